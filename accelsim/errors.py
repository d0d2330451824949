"""Exceptions raised for bad user input, and the rules that keep their messages short.

Library code raises these; only :mod:`accelsim.cli` turns them into a one-line message and exit code 2
(:func:`one_line`). Messages stay short: a value echoed in a message is cut to :data:`SHOWN_CHARS` characters
(:func:`short`), a :class:`ConfigError` lists at most :data:`SHOWN_PROBLEMS` problems and counts the rest, and the
CLI line is capped at :data:`LINE_CHARS` characters with a count of what it leaves out.
"""
from __future__ import annotations

SHOWN_CHARS = 80
SHOWN_PROBLEMS = 8
LINE_CHARS = 2000


def short(text: object, limit: int = SHOWN_CHARS) -> str:
    """``str(text)`` cut to ``limit`` characters: ``head…(+N chars)`` when longer."""
    s = str(text)
    return s if len(s) <= limit else f"{s[:limit]}…(+{len(s) - limit} chars)"


def short_path(path: object, limit: int = SHOWN_CHARS) -> str:
    """A file path cut to ``limit`` characters from the left (``…(N chars)tail``), so the file's own name stays."""
    s = str(path)
    return s if len(s) <= limit else f"…(+{len(s) - limit} chars){s[-limit:]}"


class AccelsimError(Exception):
    """Base class of every error accelsim raises on user input."""


class ConfigError(AccelsimError):
    """One or more problems in a configuration file or dict.

    ``problems`` lists every problem as ``"field.path: expected ..., got ..."``; ``source`` names the file. The
    message shows the first :data:`SHOWN_PROBLEMS` of them and counts the others.
    """

    def __init__(self, problems, source: str | None = None):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        self.source = source
        prefix = f"{short(source)}: " if source else ""
        shown = [short(p, 4 * SHOWN_CHARS) for p in self.problems[:SHOWN_PROBLEMS]]
        more = len(self.problems) - len(shown)
        tail = [f"… and {more} more problem{'s' if more > 1 else ''}"] if more > 0 else []
        super().__init__(prefix + "; ".join(shown + tail))


class MappingError(AccelsimError):
    """A layer cannot be mapped onto the hardware (unsupported precision, impossible shape...)."""


class QuantError(AccelsimError, ValueError):
    """Bad quantization input: dtypes, shapes, scales, zero points or bit-widths."""


def one_line(exc: BaseException, limit: int = LINE_CHARS) -> str:
    """The error as one line (line breaks become `` | ``), at most ``limit`` characters plus a count of the rest."""
    text = " | ".join(str(exc).splitlines()) or type(exc).__name__
    return text if len(text) <= limit else f"{text[:limit]} … ({len(text) - limit} more characters)"
