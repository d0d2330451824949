"""Exceptions raised for bad user input.

Library code raises these; only :mod:`accelsim.cli` turns them into a one-line message and exit code 2.
"""
from __future__ import annotations


class AccelsimError(Exception):
    """Base class of every error accelsim raises on user input."""


class ConfigError(AccelsimError):
    """One or more problems in a configuration file or dict.

    ``problems`` lists every problem as ``"field.path: expected ..., got ..."``; ``source`` names the file.
    """

    def __init__(self, problems, source: str | None = None):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.problems))


class MappingError(AccelsimError):
    """A layer cannot be mapped onto the hardware (unsupported precision, impossible shape...)."""


class QuantError(AccelsimError, ValueError):
    """Bad quantization input: dtypes, shapes, scales, zero points or bit-widths."""
