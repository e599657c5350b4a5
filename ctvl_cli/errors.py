"""Exception hierarchy of ctvl. Library code raises these; only the CLI layer prints and exits.

Exit codes (documented in README):
    0    success
    1    runtime error, or a batch in which some inputs failed (partial failure)
    2    usage or input error (bad option, unreadable/invalid file, unknown model, missing weights)
    130  interrupted (Ctrl-C / SIGINT)
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CtvlError(Exception):
    """Base class. ``str(err)`` is a single line: ``<path>: <reason> (hint: <hint>)``."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, reason: str, *, path: str | Path | None = None, hint: str | None = None) -> None:
        self.reason = " ".join(str(reason).split())  # always one line
        self.path = None if path is None else str(path)
        self.hint = None if hint is None else " ".join(str(hint).split())
        super().__init__(self.one_line())

    def one_line(self) -> str:
        msg = f"{self.path}: {self.reason}" if self.path else self.reason
        if self.hint:
            msg += f" (hint: {self.hint})"
        return msg


class UsageError(CtvlError):
    """Bad option values or combinations."""

    exit_code = EXIT_USAGE


class NotBuiltError(UsageError):
    """A subcommand that exists in the CLI but is not implemented in this version."""


class InputError(CtvlError):
    """An input file is missing, unreadable or invalid (wrong dimensionality, NaNs, bad spacing...)."""

    exit_code = EXIT_USAGE


class ModelNotFoundError(UsageError):
    """Unknown model name."""


class CardError(UsageError):
    """A model card does not validate."""


class WeightsNotFoundError(CtvlError):
    """Weights are not present locally (and may not be downloaded now)."""

    exit_code = EXIT_USAGE


class WeightsIntegrityError(CtvlError):
    """A weights file does not match the sha256 in its model card."""


class CacheError(CtvlError):
    """The embedding cache is unusable (corrupt, wrong format, incompatible entries)."""


class CacheLockedError(CacheError):
    """Another process is writing the same cache."""


class PartialFailure(CtvlError):
    """A batch finished, but some inputs failed. ``failures`` lists (input, reason)."""

    def __init__(self, reason: str, *, failures: list[tuple[str, str]], hint: str | None = None) -> None:
        self.failures = failures
        super().__init__(reason, hint=hint)
