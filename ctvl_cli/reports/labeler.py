"""Negation-aware rule-based extractor of the 18 CT-RATE findings from chest-CT report text.

The rules are data (``labeler_rules.yaml``); this module is the engine:

1. normalise the report (lower case, unified dashes and quotes, collapsed white space) and split it into
   sentences (``.`` not inside a number, ``;``, ``"`` and line breaks);
2. in each sentence, find every match of every finding's patterns;
3. drop a match that overlaps one of the finding's ``exclude`` matches (a confusable neighbour: "lymph node"
   for nodules, "coronary" for arterial-wall calcification...) or that lies in a sentence matching one of its
   ``exclude_sentence`` patterns;
4. classify each remaining match as *negated* (NegEx-like: a ``pre`` trigger before it or a ``post`` trigger
   after it, with no scope terminator in between and within a word budget; ``pseudo`` phrases such as "no
   change" are not triggers), *uncertain* (same mechanism with the uncertainty triggers), or *positive*;
5. a finding is positive (1) when at least one of its matches is positive, or uncertain and the finding's
   ``uncertain`` policy is ``positive``.

The label order is CT-RATE's (``FINDINGS``, the phantom generator's ``findings.yaml`` table). Example::

    >>> from ctvl_cli.reports import label_report
    >>> label_report("Small right pleural effusion. No pericardial effusion.")["Pleural effusion"]
    1
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.phantom.findings import finding_names

__all__ = [
    "FINDINGS",
    "Mention",
    "Rules",
    "explain",
    "label_report",
    "label_reports",
    "load_rules",
    "mentions",
    "split_sentences",
]

_POLICIES = ("positive", "negative")


FINDINGS: tuple[str, ...] = tuple(finding_names())
"""The 18 CT-RATE findings, in CT-RATE label-column order."""


@dataclass(frozen=True)
class _Finding:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    exclude_sentence: tuple[re.Pattern[str], ...]
    require_sentence: tuple[re.Pattern[str], ...]
    uncertain: str


@dataclass(frozen=True)
class _Scope:
    pre: tuple[re.Pattern[str], ...]
    post: tuple[re.Pattern[str], ...]
    pseudo: tuple[re.Pattern[str], ...]
    stop_forward: tuple[re.Pattern[str], ...]
    stop_backward: tuple[re.Pattern[str], ...]
    pre_words: int
    post_words: int


@dataclass(frozen=True)
class Rules:
    """A compiled rule set (see ``load_rules``)."""

    source: str
    findings: tuple[_Finding, ...]
    negation: _Scope
    uncertainty: _Scope


@dataclass(frozen=True)
class Mention:
    """One match of a finding's pattern in one sentence, with its status.

    Attributes:
        finding: CT-RATE finding name.
        status: ``positive``, ``negated``, ``uncertain`` or ``excluded``.
        sentence: the normalised sentence (lower case) the match lies in.
        text: the matched text.
        rule: the pattern that matched.
        trigger: the negation/uncertainty trigger or exclusion text that decided the status (None if positive).
        start: start of the match in ``sentence``.
        end: end of the match in ``sentence``.
    """

    finding: str
    status: str
    sentence: str
    text: str
    rule: str
    trigger: str | None
    start: int
    end: int


# ----------------------------------------------------------------------------------------------- rule loading
def _compile(items: Any, where: str, key: str) -> tuple[re.Pattern[str], ...]:
    if items is None:
        return ()
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise InputError(f"{key} must be a list of regular expressions", path=where)
    out = []
    for x in items:
        try:
            out.append(re.compile(x))
        except re.error as err:
            raise InputError(f"bad regular expression in {key}: {x!r} ({err})", path=where) from err
    return tuple(out)


def _scope(d: Any, where: str, key: str) -> _Scope:
    if not isinstance(d, dict):
        raise InputError(f"section {key!r} missing or not a mapping", path=where)
    return _Scope(
        pre=_compile(d.get("pre"), where, f"{key}.pre"),
        post=_compile(d.get("post"), where, f"{key}.post"),
        pseudo=_compile(d.get("pseudo"), where, f"{key}.pseudo"),
        stop_forward=_compile(d.get("stop_forward"), where, f"{key}.stop_forward"),
        stop_backward=_compile(d.get("stop_backward"), where, f"{key}.stop_backward"),
        pre_words=int(d.get("pre_words", 12)),
        post_words=int(d.get("post_words", 12)),
    )


def load_rules(*, path: str | Path | None = None) -> Rules:
    """Load and compile a rule file (default: the packaged ``labeler_rules.yaml``).

    Args:
        path: a YAML rule file with the same layout as the packaged one; every one of the 18 findings must
            have an entry.

    Raises:
        InputError: the file is missing, not YAML, or its rules are malformed.
    """
    if path is None:
        return _default_rules()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read rule file ({err.strerror})", path=p) from err
    return _parse(text, str(p))


@cache
def _default_rules() -> Rules:
    text = resources.files("ctvl_cli.reports").joinpath("labeler_rules.yaml").read_text("utf-8")
    return _parse(text, "labeler_rules.yaml")


def _parse(text: str, where: str) -> Rules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({' '.join(str(err).split())})", path=where) from err
    if not isinstance(data, dict) or not isinstance(data.get("findings"), dict):
        raise InputError("rule file needs a 'findings' mapping", path=where)
    default_policy = data.get("uncertain_default", "negative")
    found = data["findings"]
    missing = [f for f in FINDINGS if f not in found]
    unknown = [f for f in found if f not in FINDINGS]
    if missing or unknown:
        raise InputError(
            f"rule file findings differ from CT-RATE's: missing {missing}, unknown {unknown}",
            path=where,
            hint="give one entry per CT-RATE finding, spelt as in ctvl_cli/phantom/findings.yaml",
        )
    findings = []
    for name in FINDINGS:
        spec = found[name] or {}
        policy = spec.get("uncertain", default_policy)
        if policy not in _POLICIES:
            raise InputError(f"{name}: uncertain must be one of {_POLICIES}, got {policy!r}", path=where)
        pats = _compile(spec.get("patterns"), where, f"{name}.patterns")
        if not pats:
            raise InputError(f"{name}: no patterns", path=where)
        findings.append(
            _Finding(
                name=name,
                patterns=pats,
                exclude=_compile(spec.get("exclude"), where, f"{name}.exclude"),
                exclude_sentence=_compile(spec.get("exclude_sentence"), where, f"{name}.exclude_sentence"),
                require_sentence=_compile(spec.get("require_sentence"), where, f"{name}.require_sentence"),
                uncertain=policy,
            )
        )
    return Rules(
        source=where,
        findings=tuple(findings),
        negation=_scope(data.get("negation"), where, "negation"),
        uncertainty=_scope(data.get("uncertainty"), where, "uncertainty"),
    )


# ------------------------------------------------------------------------------------------- text handling
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_QUOTES = re.compile(r"[\u201c\u201d\u201e\u00ab\u00bb]")
_SPLIT = re.compile(r'(?<!\d)\.(?!\d)|(?<=\d)\.(?=\s|$)|[;"\n\r]+')
_SPACE = re.compile(r"\s+")


def _normalise(text: str) -> str:
    text = _QUOTES.sub('"', _DASHES.sub("-", text)).lower()
    return text.replace("\u2019", "'")


def split_sentences(text: str) -> list[str]:
    """Normalised (lower-case, single-spaced) sentences of a report; empty pieces are dropped."""
    out = []
    for piece in _SPLIT.split(_normalise(text)):
        s = _SPACE.sub(" ", piece).strip(" ,:")
        if s:
            out.append(s)
    return out


def _spans(pats: Iterable[re.Pattern[str]], s: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for p in pats for m in p.finditer(s) if m.end() > m.start()]


def _overlaps(a0: int, a1: int, spans: Sequence[tuple[int, int, str]]) -> tuple[int, int, str] | None:
    for sp in spans:
        if sp[0] < a1 and a0 < sp[1]:
            return sp
    return None


class _Triggers:
    """Trigger and terminator positions of one scope kind in one sentence."""

    def __init__(self, scope: _Scope, s: str) -> None:
        pseudo = _spans(scope.pseudo, s)
        self.scope = scope
        self.s = s
        self.pre = [t for t in _spans(scope.pre, s) if not _overlaps(t[0], t[1], pseudo)]
        self.post = [t for t in _spans(scope.post, s) if not _overlaps(t[0], t[1], pseudo)]
        self.stop_f = _spans(scope.stop_forward, s)
        self.stop_b = _spans(scope.stop_backward, s)

    @staticmethod
    def _blocked(a: int, b: int, stops: Sequence[tuple[int, int, str]]) -> bool:
        return any(a <= t0 and t1 <= b for t0, t1, _ in stops)

    def find(self, start: int, end: int) -> str | None:
        """The trigger whose scope covers the match [start, end), or None."""
        sc = self.scope
        for _t0, t1, txt in self.pre:
            if t1 <= start and len(self.s[t1:start].split()) <= sc.pre_words:
                if not self._blocked(t1, start, self.stop_f):
                    return txt
        for t0, _t1, txt in self.post:
            if t0 >= end and len(self.s[end:t0].split()) <= sc.post_words:
                if not self._blocked(end, t0, self.stop_b):
                    return txt
        return None


def mentions(text: str, *, rules: Rules | None = None) -> list[Mention]:
    """Every finding mention in a report, with its status (positive/negated/uncertain/excluded).

    Args:
        text: report text (findings and/or impression).
        rules: compiled rules (default: the packaged rules).
    """
    if not isinstance(text, str):
        raise UsageError(f"report text must be a string, got {type(text).__name__}")
    rules = rules or _default_rules()
    out: list[Mention] = []
    for s in split_sentences(text):
        neg = unc = None
        for f in rules.findings:
            matches = [(m.start(), m.end(), m.group(0), p.pattern) for p in f.patterns for m in p.finditer(s)]
            if not matches or (f.require_sentence and not any(p.search(s) for p in f.require_sentence)):
                continue
            if neg is None:
                neg, unc = _Triggers(rules.negation, s), _Triggers(rules.uncertainty, s)
            sent_ex = next((m.group(0) for p in f.exclude_sentence for m in [p.search(s)] if m), None)
            excl = _spans(f.exclude, s)
            for a, b, txt, rule in matches:
                ex = _overlaps(a, b, excl)
                if sent_ex is not None or ex is not None:
                    status, trig = "excluded", sent_ex if sent_ex is not None else ex[2]  # type: ignore[index]
                elif (trig := neg.find(a, b)) is not None:
                    status = "negated"
                elif (trig := unc.find(a, b)) is not None:  # type: ignore[union-attr]
                    status = "uncertain"
                else:
                    status, trig = "positive", None
                out.append(Mention(f.name, status, s, txt, rule, trig, a, b))
    return out


def _decide(ms: Iterable[Mention], rules: Rules, uncertain: str | None) -> dict[str, int]:
    policy = {f.name: (uncertain or f.uncertain) for f in rules.findings}
    labels = dict.fromkeys(FINDINGS, 0)
    for m in ms:
        if m.status == "positive" or (m.status == "uncertain" and policy[m.finding] == "positive"):
            labels[m.finding] = 1
    return labels


def _check_policy(uncertain: str | None) -> None:
    if uncertain is not None and uncertain not in _POLICIES:
        raise UsageError(f"uncertain must be one of {_POLICIES} or None, got {uncertain!r}")


def label_report(text: str, *, rules: Rules | None = None, uncertain: str | None = None) -> dict[str, int]:
    """The 18 CT-RATE labels (0/1) of one report, keyed in CT-RATE order.

    Args:
        text: report text.
        rules: compiled rules (default: the packaged rules).
        uncertain: ``"positive"`` or ``"negative"`` to override every finding's uncertainty policy; None keeps
            the per-finding policy of the rule file (chosen on CT-RATE's training labels).
    """
    _check_policy(uncertain)
    rules = rules or _default_rules()
    return _decide(mentions(text, rules=rules), rules, uncertain)


def label_reports(
    texts: Iterable[str], *, rules: Rules | None = None, uncertain: str | None = None
) -> np.ndarray:
    """Labels of many reports as an ``(N, 18)`` uint8 array, columns in ``FINDINGS`` order."""
    _check_policy(uncertain)
    rules = rules or _default_rules()
    rows = [list(label_report(t, rules=rules, uncertain=uncertain).values()) for t in texts]
    return np.asarray(rows, dtype=np.uint8).reshape(len(rows), len(FINDINGS))


def explain(
    text: str, *, rules: Rules | None = None, uncertain: str | None = None, all_mentions: bool = False
) -> dict[str, list[Mention]]:
    """Why each finding is positive: the mentions (rule + sentence) that made it 1.

    Args:
        text: report text.
        rules: compiled rules (default: the packaged rules).
        uncertain: uncertainty policy override, as in ``label_report``.
        all_mentions: also list negated, uncertain and excluded mentions, and findings that end up 0.

    Returns:
        ``{finding: [Mention, ...]}`` in CT-RATE order; by default only positive findings, each with the
        mentions that count towards it.
    """
    _check_policy(uncertain)
    rules = rules or _default_rules()
    ms = mentions(text, rules=rules)
    labels = _decide(ms, rules, uncertain)
    policy = {f.name: (uncertain or f.uncertain) for f in rules.findings}
    out: dict[str, list[Mention]] = {}
    for name in FINDINGS:
        mine = [m for m in ms if m.finding == name]
        if not all_mentions:
            if not labels[name]:
                continue
            mine = [
                m
                for m in mine
                if m.status == "positive" or (m.status == "uncertain" and policy[name] == "positive")
            ]
        if mine:
            out[name] = mine
    return out
