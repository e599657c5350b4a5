"""Shared CLI plumbing: error handling wrapper and shared option aliases."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.output import Format
from ctvl_cli.config import debug_enabled
from ctvl_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, CtvlError, PartialFailure

F = TypeVar("F", bound=Callable[..., Any])

FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="Output format for results on stdout.", case_sensitive=False)
]


def model_names(incomplete: str) -> list[str]:
    """Completion callback for --model: reads the JSON registry only (no torch)."""
    from ctvl_cli.registry import list_models

    return [n for n in list_models() if n.startswith(incomplete)]


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model name (see `ctvl models list`), "
        "hf-hub:ORG/REPO, or a local run/card directory. "
        "Default: the embedded default model.",
        autocompletion=model_names,
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]


def handle_errors(fn: F) -> F:
    """Turn library exceptions into one stderr line and a documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except PartialFailure as e:
            output.error(e.one_line())
            raise typer.Exit(e.exit_code) from None
        except CtvlError as e:
            if debug_enabled():
                raise
            output.error(e.one_line())
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:  # pragma: no cover - exercised via CTVL_DEBUG tests
            if debug_enabled():
                raise
            msg = " ".join(f"{type(e).__name__}: {e}".split())
            output.error(f"internal error: {msg} (hint: set CTVL_DEBUG=1 for a traceback and report it)")
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def exit_with_failures(header: str, failures) -> None:
    """A batch finished with failed items: the header and one line per item on stderr, then exit 1."""
    import sys

    output.error(header)
    for it in failures:
        sys.stderr.write(f"  {it.error}\n")
    raise typer.Exit(EXIT_FAILURE)


@contextlib.contextmanager
def progress_or_interrupt(description: str, interrupted: str):
    """A progress bar (stderr, terminals only) around a long library call; Ctrl-C inside prints ``interrupted``
    (what was kept, how to resume) and exits 130."""
    with output.progress(None, description) as bar:
        try:
            yield bar
        except KeyboardInterrupt:
            output.error(interrupted)
            raise typer.Exit(EXIT_INTERRUPTED) from None
