"""accelsim.data.packages: locating files inside installed data packages."""
from __future__ import annotations

import pytest

from accelsim.data.packages import find_package_file, package_dir
from accelsim.errors import AccelsimError


def test_missing_package_names_pip_command():
    with pytest.raises(AccelsimError, match=r"pip install --no-deps no-such-pkg==1\.0"):
        package_dir("no_such_pkg_accelsim_xyz", "no-such-pkg==1.0")


def test_missing_file_in_installed_package():
    # numpy is always installed; the file is not.
    with pytest.raises(AccelsimError, match="not found in data package 'numpy'"):
        find_package_file("numpy", "no/such/file.bin", "numpy")


def test_finds_file_in_installed_package():
    path = find_package_file("numpy", "__init__.py", "numpy")
    assert path.is_file() and path.name == "__init__.py"
    assert package_dir("numpy.linalg", "numpy").name == "linalg"
