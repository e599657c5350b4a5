"""`ctvl cache info|ls|verify|merge`: HDF5 embedding cache housekeeping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import FormatOpt, handle_errors
from ctvl_cli.cli.output import Format
from ctvl_cli.errors import EXIT_FAILURE

app = typer.Typer(no_args_is_help=True)
CacheArg = Annotated[Path, typer.Argument(help="HDF5 cache file.")]


@app.command("info")
@handle_errors
def info_cmd(cache: CacheArg, fmt: FormatOpt = Format.human) -> None:
    """Summarise a cache: models, entry counts, runs, pending journal."""
    from ctvl_cli.cache import EmbeddingCache

    with EmbeddingCache.open(cache) as c:
        info = c.info()
    if fmt == Format.human:
        output.info(
            f"{info['path']}: format {info['format']}, {info['size_bytes']} bytes, {info['runs']} runs, "
            f"{info['journal_files']} pending journal files"
        )
        output.write_table(info["models"], fmt)
    elif fmt == Format.csv:
        output.write_table(info["models"], fmt)
    else:
        output.write_record(info, fmt)


@app.command("ls")
@handle_errors
def ls_cmd(
    cache: CacheArg,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name or model key.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="image | text")] = None,
    fmt: FormatOpt = Format.human,
) -> None:
    """List cached entries."""
    from ctvl_cli.cache import EmbeddingCache
    from ctvl_cli.errors import UsageError

    if kind not in (None, "image", "text"):
        raise UsageError(f"invalid --kind {kind!r}", hint="image or text")
    rows = []
    with EmbeddingCache.open(cache) as c:
        for key, attrs in c.models().items():
            if model and model not in (key, attrs.get("name")):
                continue
            _, _, recs = c.get(key, kind=kind)
            rows += [
                {
                    "model": attrs.get("name"),
                    "model_key": key,
                    "name": r["name"],
                    "kind": r["kind"],
                    "id": r["id"],
                    "source": r["source"],
                    "shape": r["shape"] if r["kind"] == "image" else None,
                    "spacing": [round(s, 4) for s in r["spacing"]] if r["kind"] == "image" else None,
                }
                for r in recs
            ]
    output.write_table(
        rows, fmt, columns=["model", "model_key", "name", "kind", "id", "source", "shape", "spacing"]
    )


@app.command("verify")
@handle_errors
def verify_cmd(
    cache: CacheArg,
    sources: Annotated[
        bool,
        typer.Option(
            "--sources", help="Also re-hash source files to detect inputs that changed or vanished."
        ),
    ] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """Check structure, dimensions, finiteness and journal; exit 1 when problems are found."""
    from ctvl_cli.cache import EmbeddingCache

    with EmbeddingCache.open(cache) as c:
        problems = c.verify(sources=sources)
    if problems or fmt != Format.human:
        output.write_table([{"problem": p} for p in problems], fmt, columns=["problem"])
    if problems:
        output.error(f"{len(problems)} problem(s) in {cache}")
        raise typer.Exit(EXIT_FAILURE)
    output.info(f"{cache}: OK")


@app.command("merge")
@handle_errors
def merge_cmd(
    out: Annotated[Path, typer.Argument(help="Destination cache (created if missing).")],
    sources: Annotated[list[Path], typer.Argument(help="Shard caches to join.")],
    fmt: FormatOpt = Format.human,
) -> None:
    """Join shard caches (e.g. from `ctvl embed --shard i/n`) into one."""
    from ctvl_cli.cache import merge

    res = merge(out, [str(s) for s in sources])
    output.write_record({"cache": str(out), **res}, fmt)
