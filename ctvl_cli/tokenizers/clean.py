"""Text cleaning a model applies to reports and prompts before its tokenizer (declared in the card:
``text.tokenizer.clean``). Pure Python."""

from __future__ import annotations

import re
from collections.abc import Callable

# nltk.tokenize.wordpunct_tokenize is RegexpTokenizer(r"\w+|[^\w\s]+") (unicode word characters)
_WORDPUNCT = re.compile(r"\w+|[^\w\s]+")


def wordpunct(text: str) -> str:
    """Merlin's report sanitising: lower case, nltk ``wordpunct_tokenize``, tokens joined by single spaces."""
    return " ".join(_WORDPUNCT.findall(text.lower()))


CLEANERS: dict[str, Callable[[str], str]] = {"none": lambda t: t, "wordpunct": wordpunct}


def cleaner(name: str) -> Callable[[str], str]:
    return CLEANERS[name]
