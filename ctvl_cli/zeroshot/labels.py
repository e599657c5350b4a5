"""Label files and prompt construction for zero-shot classification.

Label files:
  * plain text: one finding per line; ``#`` starts a comment; blank lines ignored.
  * YAML/JSON: either a list of findings, or a mapping ``{finding: spec}``, or ``{"findings": [...]}``, where a
    finding is a name or ``{name, positive: [...], negative: [...], synonyms: [...]}``. ``positive``/``negative``
    are explicit prompts (``{}`` is replaced by the name/synonym) that replace the template set's prompts for that
    finding; ``synonyms`` add more names whose prompts are ensembled with the main name's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ctvl_cli.errors import InputError, UsageError


@dataclass(frozen=True)
class Finding:
    name: str
    positive: tuple[str, ...]  # fully formatted prompts
    negative: tuple[str, ...]


@cache
def _template_data() -> dict[str, Any]:
    return json.loads(resources.files("ctvl_cli.zeroshot").joinpath("templates.json").read_text())


def template_sets() -> list[str]:
    d = _template_data()
    return sorted([*d["sets"], *d["ensembles"]])


def templates(name: str) -> tuple[list[str], list[str]]:
    """Positive and negative templates of a built-in set or ensemble."""
    d = _template_data()
    if name in d["sets"]:
        s = d["sets"][name]
        return list(s["positive"]), list(s["negative"])
    if name in d["ensembles"]:
        pos: list[str] = []
        neg: list[str] = []
        for member in d["ensembles"][name]:
            p, n = templates(member)
            pos += p
            neg += n
        return pos, neg
    raise UsageError(f"unknown template set {name!r}", hint=f"choose one of {', '.join(template_sets())}")


def _fmt(tpl: str, name: str) -> str:
    return tpl.replace("{}", name)


def _finding(entry: Any, pos_t: list[str], neg_t: list[str], where: Path) -> Finding:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise InputError(f"invalid finding entry {entry!r}", path=where, hint="each finding needs a 'name'")
    unknown = set(entry) - {"name", "positive", "negative", "synonyms"}
    if unknown:
        raise InputError(
            f"unknown keys {sorted(unknown)} in finding {entry['name']!r}",
            path=where,
            hint="allowed: name, positive, negative, synonyms",
        )
    name = entry["name"].strip()
    names = [name, *[str(s).strip() for s in entry.get("synonyms", []) or []]]
    p_t = [str(x) for x in entry.get("positive", []) or []] or pos_t
    n_t = [str(x) for x in entry.get("negative", []) or []] or neg_t
    pos = tuple(dict.fromkeys(_fmt(t, n) for n in names for t in p_t))
    neg = tuple(dict.fromkeys(_fmt(t, n) for n in names for t in n_t))
    return Finding(name=name, positive=pos, negative=neg)


def load_labels(path: str | Path, *, template_set: str = "ctclip") -> list[Finding]:
    """Read a label file and build each finding's positive/negative prompts."""
    p = Path(path)
    if not p.is_file():
        raise InputError("label file not found", path=p, hint="one finding per line, or YAML/JSON")
    pos_t, neg_t = templates(template_set)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as e:  # yaml/json syntax errors
            raise InputError(f"cannot parse label file ({' '.join(str(e).split())[:200]})", path=p) from None
        if isinstance(data, dict) and "findings" in data:
            data = data["findings"]
        if isinstance(data, dict):
            data = [
                {"name": k, **(v or {})} if isinstance(v, dict) or v is None else {"name": k, "synonyms": v}
                for k, v in data.items()
            ]
        if not isinstance(data, list):
            raise InputError("expected a list or mapping of findings", path=p)
        findings = [_finding(e, pos_t, neg_t, p) for e in data]
    else:
        names = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        findings = [_finding(n, pos_t, neg_t, p) for n in names if n]
    if not findings:
        raise InputError("no findings in label file", path=p, hint="one finding per line")
    seen: set[str] = set()
    for f in findings:
        if f.name.lower() in seen:
            raise InputError(f"duplicate finding {f.name!r}", path=p)
        seen.add(f.name.lower())
    return findings


def findings_from_names(names: list[str], *, template_set: str = "ctclip") -> list[Finding]:
    """Findings with the template set's prompts for plain names (e.g. the columns of a labels.csv)."""
    pos_t, neg_t = templates(template_set)
    return [_finding(n, pos_t, neg_t, Path("<names>")) for n in names]
