"""Output files of the command-line interfaces (:mod:`accelsim.cli` and the subcommand modules): every path is
checked before any work starts, and all outputs are written atomically or none (a failed write removes the
files already written), each problem a one-line :class:`~accelsim.errors.ConfigError`."""
from __future__ import annotations

from pathlib import Path

from .config.loader import is_dir
from .errors import ConfigError, short
from .report import write_atomic

__all__ = ["check_output_dirs", "write_outputs"]


def check_output_dirs(*paths: str | None) -> None:
    """Each given output path names a file in an existing folder (``None`` entries are skipped)."""
    for p in paths:
        if p is None:
            continue
        if not p.strip():
            raise ConfigError(["an output file name is empty (--json/--csv need a file name)"])
        if is_dir(Path(p)):
            raise ConfigError([f"{short(p)}: is a folder; give a file name for the output"])
        try:
            parent = Path(p).resolve().parent
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError([f"{short(p)}: not a usable file name ({short(exc)})"]) from None
        if not is_dir(parent):
            raise ConfigError([f"{short(p)}: output folder {short(parent)} does not exist"])


def write_outputs(outputs: list[tuple[str, str]]) -> None:
    """Write every ``(path, text)`` atomically; on a failure remove those already written and raise."""
    written: list[Path] = []
    try:
        for path, text in outputs:
            write_atomic(path, text)
            written.append(Path(path))
    except (OSError, ValueError) as exc:
        for p in written:
            p.unlink(missing_ok=True)
        raise ConfigError([f"cannot write {short(getattr(exc, 'filename', None) or path)}: "
                           f"{getattr(exc, 'strerror', None) or short(exc)}"]) from None
