"""CT-RATE-style findings + impression text for a phantom case (wording from ``report_phrases.yaml``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import yaml


@functools.lru_cache(maxsize=1)
def phrase_table() -> dict[str, Any]:
    """The packaged report phrase table."""
    text = resources.files("ctvl_cli.phantom").joinpath("report_phrases.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def _slots(details: Mapping[str, Any]) -> dict[str, str]:
    """Template values derived from a finding's rendering details."""
    side = str(details.get("side", "bilateral"))
    lobe = str(details.get("lobe", "lower lobe"))
    full_lobe = f"{side} {lobe}" if side in ("right", "left") else lobe
    devices = list(details.get("devices", []))
    stations = list(details.get("stations", []))
    count = int(details.get("count", 1))
    ctype = str(details.get("type", "centrilobular"))
    depth = details.get("depth_mm")
    slots = {
        "side": side,
        "side_lung": f"the {side} lung" if side in ("right", "left") else "both lungs",
        "side_adj": f"{side}-sided" if side in ("right", "left") else "bilateral",
        "side_hemithorax": f"the {side} hemithorax" if side in ("right", "left") else "both hemithoraces",
        "lower_lobes": f"the {side} lower lobe" if side in ("right", "left") else "both lower lobes",
        "lobe": full_lobe,
        "size": str(details.get("size_mm", "")),
        "count_text": ["One", "Two", "Three", "Four", "Five"][min(count, 5) - 1],
        "plural_n": "s" if count > 1 else "",
        "devices": _join(devices),
        "is_are": "are" if len(devices) > 1 or any(d.endswith("s") for d in devices) else "is",
        "stations": _join(stations),
        "plural_s": "s" if len(stations) > 1 else "",
        "thickness": str(details.get("thickness_mm", "")),
        "vessels": _join(list(details.get("vessels", []))),
        "ctr": str(details.get("ctr", "")),
        "zone": str(details.get("zone", "peripheral")),
        "type": ctype,
        "type_text": {"dependent": "dependent subsegmental", "linear": "linear (plate-like)"}.get(
            ctype, ctype
        ),
        "depth": str(max(depth.values())) if isinstance(depth, Mapping) and depth else "",
    }
    for k in ("devices", "type", "type_text", "side_adj", "lobe"):
        slots[_capital(k) if k != "lobe" else "Lobe_cap"] = _capital(slots[k])
    return slots


def _fill(template: str, slots: Mapping[str, str]) -> str:
    text = template.format_map(_Blank(slots))
    return " ".join(text.replace(" ()", "").replace("( )", "").split())


def write_report(
    labels: Mapping[str, int], details: Mapping[str, Mapping[str, Any]], rng: np.random.Generator
) -> tuple[str, str]:
    """Findings and impression text for a case.

    Args:
        labels: finding name -> 0/1 (the 18 CT-RATE names).
        details: finding name -> rendering details (side, lobe, size...), for positive findings.
        rng: random generator choosing the wording.

    Returns:
        (findings_text, impression_text).
    """
    table = phrase_table()
    phrases = table["findings"]
    p_neg = float(table["p_negate"])
    generic, p_gen = table.get("generic", {}), float(table.get("p_generic", 0.0))

    def pick(pool: list[str]) -> str:
        return pool[int(rng.integers(len(pool)))]

    def say(entry: Mapping[str, Any], kind: str, own: list[str], slots: Mapping[str, str]) -> str:
        """One sentence: the finding's own wording, or (p_generic) a generic template with one of its terms."""
        if entry.get("terms") and generic.get(kind) and rng.random() < p_gen:
            term = pick(entry["terms"])
            return _fill(pick(generic[kind]), {**slots, "term": term, "Term": _capital(term)})
        return _fill(pick(own), slots)

    sentences: list[str] = []
    for section in table["sections"]:
        for item in section:
            if "finding" in item:
                name = item["finding"]
                entry = phrases[name]
                if labels.get(name):
                    det = details.get(name, {})
                    pool = entry["positive"]
                    if int(det.get("count", 1)) > 1 and "positive_multi" in entry:
                        pool = entry["positive_multi"]
                    sentences.append(say(entry, "positive", pool, _slots(det)))
                elif rng.random() < p_neg:
                    sentences.append(say(entry, "negative", entry["negative"], {}))
            else:
                if any(labels.get(n) for n in item.get("covers", [])):
                    continue
                if rng.random() < float(item.get("p", 1.0)):
                    sentences.append(pick(item["normal"]))
    positives = [n for n in phrases if labels.get(n)]
    if positives:
        bullet = pick(table["impression_joiners"])
        imp = []
        for n in positives:
            imp.append(
                bullet + say(phrases[n], "impression", phrases[n]["impression"], _slots(details.get(n, {})))
            )
        impression = " ".join(imp)
    else:
        impression = pick(table["impression_normal"])
    return " ".join(sentences), impression
