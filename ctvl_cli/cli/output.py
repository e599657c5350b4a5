"""The one output sink of the CLI: data goes to stdout, everything else to stderr.

``--format human|json|jsonl|csv`` selects how tables and records are written to stdout.
Messages, warnings, errors and progress bars always go to stderr; progress bars only when
stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any


class Format(str, Enum):
    human = "human"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def _stderr_console():
    from rich.console import Console

    # Resolved at call time so that redirected/captured streams (tests) are honoured.
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "tolist"):  # numpy scalars/arrays
        return v.tolist()
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _human_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return (
            "x".join(_human_cell(x) for x in v)
            if all(isinstance(x, (int, float)) for x in v)
            else ", ".join(map(str, v))
        )
    return str(v)


def write_table(
    rows: Sequence[dict[str, Any]],
    fmt: Format,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Write a table of records to stdout in the requested format.

    ``json`` writes one JSON array (``[]`` when empty); ``jsonl`` one object per line; ``csv`` a header
    plus rows; ``human`` a rich table.
    """
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    out = sys.stdout
    if fmt == Format.json:
        out.write(json.dumps([_jsonable({c: r.get(c) for c in columns}) for r in rows], indent=2) + "\n")
    elif fmt == Format.jsonl:
        for r in rows:
            out.write(json.dumps(_jsonable({c: r.get(c) for c in columns})) + "\n")
    elif fmt == Format.csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else _jsonable(r.get(c)) for c in columns])
        out.write(buf.getvalue())
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_edge=False, header_style="bold")
        for c in columns:
            table.add_column(str(c), overflow="fold")
        for r in rows:
            table.add_row(*(_human_cell(r.get(c)) for c in columns))
        Console(file=out, width=None if out.isatty() else 200, highlight=False).print(table)
    out.flush()


def write_record(record: dict[str, Any], fmt: Format) -> None:
    """Write one record (key/value pairs) to stdout."""
    out = sys.stdout
    if fmt in (Format.json, Format.jsonl):
        out.write(json.dumps(_jsonable(record), indent=2 if fmt == Format.json else None) + "\n")
    elif fmt == Format.csv:
        write_table([record], fmt)
    else:
        width = max((len(str(k)) for k in record), default=0)
        for k, v in record.items():
            if isinstance(v, dict):
                out.write(f"{k}:\n")
                for k2, v2 in v.items():
                    out.write(
                        f"  {k2}: {_human_cell(v2) if not isinstance(v2, dict) else json.dumps(_jsonable(v2))}\n"
                    )
            else:
                out.write(f"{str(k).ljust(width)}  {_human_cell(v)}\n")
    out.flush()


def info(msg: str) -> None:
    _stderr_console().print(msg, markup=False)


def warn(msg: str) -> None:
    _stderr_console().print(f"ctvl: warning: {msg}", markup=False, style="yellow")


def error(msg: str) -> None:
    _stderr_console().print(f"ctvl: error: {msg}", markup=False, style="red")


class _NullProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def update(self, **kw: Any) -> None:
        pass


class _RichProgress:
    def __init__(self, progress, task) -> None:
        self._p, self._t = progress, task

    def advance(self, n: int = 1) -> None:
        self._p.advance(self._t, n)

    def update(self, **kw: Any) -> None:
        self._p.update(self._t, **kw)


@contextlib.contextmanager
def progress(total: int | None, description: str) -> Iterator[_NullProgress | _RichProgress]:
    """A rich progress bar on stderr when stderr is a terminal; a no-op otherwise."""
    if not sys.stderr.isatty():
        yield _NullProgress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_stderr_console(),
        transient=False,
    ) as p:
        yield _RichProgress(p, p.add_task(description, total=total))
