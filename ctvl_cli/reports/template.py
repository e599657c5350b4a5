"""Structured reports from a set of findings called present (``generate-report --method template``), with the
sentences of ``template.yaml``: findings section in CT-RATE's organ order, then an impression listing the
present findings (or a normal impression)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources

import yaml


@functools.lru_cache(maxsize=1)
def template_table() -> dict:
    return yaml.safe_load(resources.files("ctvl_cli.reports").joinpath("template.yaml").read_text("utf-8"))


def write_template_report(present: Iterable[str]) -> str:
    """Report text for the findings in ``present`` (CT-RATE names); every other finding is stated absent."""
    t = template_table()
    on = set(present)
    unknown = on - set(t["findings"])
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}")
    out: list[str] = []
    for section in t["sections"]:
        for item in section:
            if "finding" in item:
                out.append(t["findings"][item["finding"]]["present" if item["finding"] in on else "absent"])
            elif not on.intersection(item.get("covers", [])):
                out.append(item["normal"])
    imp = [t["findings"][f]["impression"] for f in t["findings"] if f in on]
    return " ".join(out + (imp or [t["impression_normal"]]))
