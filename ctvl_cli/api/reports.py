"""Reading report-text tables (CSV) for `ctvl embed --reports` and friends.

Accepted columns (first match wins, case-insensitive):
  id:    ``id``, ``VolumeName``, ``AccessionNo``, ``report_id``, ``name``
  text:  ``text``, ``report_text``, ``report``; or ``Findings_EN`` + ``Impressions_EN`` (CT-RATE), which are joined
         the way CT-CLIP does it (findings then impression, "Not given." dropped).
Rows with an empty text are reported as failures, never silently dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ctvl_cli.errors import InputError

ID_COLUMNS = ("id", "volumename", "accessionno", "report_id", "name")
TEXT_COLUMNS = ("text", "report_text", "report")


@dataclass(frozen=True)
class ReportRow:
    id: str
    text: str
    line: int


def _clean(s: str | None) -> str:
    s = (s or "").strip()
    return "" if s.lower() == "not given." else s


def text_getter(fields: dict[str, str]):
    """For a CSV header (lower-cased name -> name): a function row -> report text, or None when the table has no
    text column. ``text``/``report_text``/``report`` win; else CT-RATE's findings + impression, joined the way
    CT-CLIP does it ("Not given." dropped)."""
    text_col = next((fields[c] for c in TEXT_COLUMNS if c in fields), None)
    if text_col is not None:
        return lambda r: _clean(r.get(text_col))
    if "findings_en" in fields and "impressions_en" in fields:
        f, i = fields["findings_en"], fields["impressions_en"]
        return lambda r: " ".join(x for x in (_clean(r.get(f)), _clean(r.get(i))) if x)
    return None


def read_reports(path: str | Path) -> list[ReportRow]:
    p = Path(path)
    if not p.is_file():
        raise InputError("report table not found", path=p, hint="pass a CSV with columns id,text")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = {f.lower().strip(): f for f in (reader.fieldnames or [])}
            id_col = next((fields[c] for c in ID_COLUMNS if c in fields), None)
            get_text = text_getter(fields)
            if get_text is None:
                raise InputError(
                    f"no text column among {sorted(fields.values())}",
                    path=p,
                    hint="name it 'text' (or report_text, or CT-RATE's Findings_EN + Impressions_EN)",
                )
            rows = []
            for i, r in enumerate(reader):
                text = get_text(r)
                rid = (r.get(id_col) or "").strip() if id_col else ""
                rows.append(ReportRow(id=rid or f"row{i + 1}", text=text, line=i + 2))
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text ({e.reason})", path=p, hint="save the CSV as UTF-8") from None
    except csv.Error as e:
        raise InputError(f"malformed CSV ({e})", path=p) from None
    seen: dict[str, int] = {}
    for r in rows:
        if r.id in seen:
            raise InputError(
                f"duplicate report id {r.id!r} (lines {seen[r.id]} and {r.line})",
                path=p,
                hint="ids must be unique",
            )
        seen[r.id] = r.line
    return rows
