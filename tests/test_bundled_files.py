"""Bundled model and hw YAMLs resolve from a checkout, from a wheel, and despite a stale install.

``config.loader.bundle_dir`` looks in the checkout this package lives in (top-level ``models/``,
``hw_configs/``, recognised by the pyproject.toml naming accelsim), then in the package data a wheel installs
(``accelsim/models``). It imports nothing, so a stale finder for ``accelsim.models`` can neither crash it nor win.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.config import loader
from accelsim.config.loader import bundle_candidates, bundle_dir, bundled_names, load_hw, load_model, resolve
from accelsim.errors import AccelsimError, ConfigError
from conftest import REPO

KINDS = {"model": "models", "hw": "hw_configs"}

# Prelude for a fresh interpreter: drop the editable-install finder (so only sys.path decides where accelsim
# comes from), optionally put a stale finder first, then run the CLI with the remaining arguments.
PRELUDE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
if sys.argv[1] == "stale":
    class Stale:  # what a setuptools editable finder mapped onto a deleted clone amounts to
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name in ("accelsim.models", "accelsim.hw_configs"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Stale)
import accelsim
from accelsim.config.loader import bundle_dir
from accelsim.cli import main
print("package", accelsim.__file__)
print("bundles", bundle_dir("model"), bundle_dir("hw"))
sys.exit(main(sys.argv[2:]))
"""


def run_fresh(pythonpath: Path, cwd: Path, *args: str, stale: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([sys.executable, "-c", PRELUDE, "stale" if stale else "-", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def yaml_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.yaml"))


# --- checkout ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, folder", KINDS.items())
def test_checkout_uses_its_own_top_level_folders(kind, folder):
    assert bundle_dir(kind) == REPO / folder
    assert bundled_names(kind) == [n[:-5] for n in yaml_names(REPO / folder)]


def test_bundled_names_resolve_to_checkout_files():
    assert resolve("resnet50", "model") == REPO / "models" / "resnet50.yaml"
    assert resolve("edge.yaml", "hw") == REPO / "hw_configs" / "edge.yaml"
    assert load_model("resnet50").params == 25_557_032
    assert load_hw("edge").array.rows > 0


def test_readme_paths_resolve_to_bundled_files_outside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("models/resnet50.yaml", "model") == REPO / "models" / "resnet50.yaml"
    assert resolve("hw_configs/edge.yaml", "hw") == REPO / "hw_configs" / "edge.yaml"
    with pytest.raises(ConfigError, match="not a bundled hw name"):
        resolve("models/edge.yaml", "hw")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "resnet50.yaml").write_text("mine: true\n")
    assert resolve("models/resnet50.yaml", "model") == Path("models/resnet50.yaml")  # an existing file wins


def test_checkout_without_install_runs_cli_from_elsewhere(tmp_path):
    """Repo on sys.path, no install (editable finder removed), cwd outside the repo."""
    out = run_fresh(REPO, tmp_path, "run", "models/resnet50.yaml", "--hw", "hw_configs/edge.yaml", "--quiet")
    assert out.returncode == 0, out.stderr
    assert f"package {REPO / 'accelsim' / '__init__.py'}" in out.stdout
    assert f"bundles {REPO / 'models'} {REPO / 'hw_configs'}" in out.stdout
    assert "model resnet50 on edge" in out.stdout


# --- stale installs ----------------------------------------------------------------------------------------

class _StaleFinder:
    """A leftover editable finder: claims accelsim.models / accelsim.hw_configs and fails to load them."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in ("accelsim.models", "accelsim.hw_configs"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.mark.parametrize("stale_folder_exists", [False, True], ids=["deleted", "outdated"])
def test_stale_install_neither_crashes_nor_shadows_the_checkout(tmp_path, monkeypatch, stale_folder_exists):
    stale = tmp_path / "old-clone"
    for folder in KINDS.values():
        if stale_folder_exists:  # an outdated copy that would shadow the checkout if it were consulted
            (stale / folder).mkdir(parents=True)
            (stale / folder / "resnet50.yaml").write_text("not: a model\n")
            (stale / folder / "edge.yaml").write_text("not: a hw config\n")
        module = types.ModuleType(f"accelsim.{folder}")
        module.__path__ = [str(stale / folder)]
        module.__file__ = str(stale / folder / "__init__.py")
        monkeypatch.setitem(sys.modules, f"accelsim.{folder}", module)
    monkeypatch.setattr(sys, "meta_path", [_StaleFinder, *sys.meta_path])

    assert resolve("resnet50", "model") == REPO / "models" / "resnet50.yaml"
    assert resolve("edge", "hw") == REPO / "hw_configs" / "edge.yaml"
    assert "resnet50" in bundled_names("model")
    assert load_model("resnet50").params == 25_557_032


def test_stale_finder_in_fresh_interpreter_does_not_break_cli(tmp_path):
    out = run_fresh(REPO, tmp_path, "run", "mnist_cnn", "--hw", "server", "--quiet", stale=True)
    assert out.returncode == 0, out.stderr
    assert f"bundles {REPO / 'models'} {REPO / 'hw_configs'}" in out.stdout


# --- where the loader looks, on made-up layouts ------------------------------------------------------------

def fake_layout(root: Path, pyproject: str | None) -> Path:
    """``root/accelsim/`` plus a sibling ``root/models/`` (and optionally ``root/pyproject.toml``)."""
    (root / "accelsim").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "models" / "sibling.yaml").write_text("x: 1\n")
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    return root / "accelsim"


@pytest.mark.parametrize("pyproject", [None, '[project]\nname = "some-other-project"\n'],
                         ids=["no-pyproject", "other-project"])
def test_a_random_models_folder_beside_the_package_is_ignored(tmp_path, pyproject):
    """E.g. site-packages/models/ installed by some other distribution next to site-packages/accelsim/."""
    package = fake_layout(tmp_path, pyproject)
    assert bundle_candidates("model", package) == [package / "models"]
    (package / "models").mkdir()
    assert bundle_dir("model", package) == package / "models"


def test_checkout_marker_puts_top_level_folder_first(tmp_path):
    package = fake_layout(tmp_path, '[project]\nname = "accelsim"\nversion = "0"\n')
    (package / "models").mkdir()
    assert bundle_candidates("model", package) == [tmp_path / "models", package / "models"]
    assert bundle_dir("model", package) == tmp_path / "models"


def test_unresolvable_bundle_is_a_one_line_config_error(tmp_path, monkeypatch, capsys):
    package = tmp_path / "accelsim"
    package.mkdir()
    with pytest.raises(ConfigError) as exc:
        bundle_dir("model", package)
    assert str(exc.value) == f"no bundled model files: looked in {package / 'models'}"

    monkeypatch.setattr(loader, "PACKAGE_DIR", package)
    with pytest.raises(AccelsimError) as exc:
        resolve("resnet50", "model")
    message = str(exc.value)
    assert message.startswith("resnet50: no such file, and no bundled model files: looked in ")
    assert str(package / "models") in message and "\n" not in message

    assert main(["run", "resnet50", "--hw", str(REPO / "hw_configs" / "edge.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "looked in" in err


def test_existing_path_needs_no_bundle(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "PACKAGE_DIR", tmp_path / "nowhere")
    assert load_hw(REPO / "hw_configs" / "edge.yaml").array.rows > 0


# --- wheel -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_wheel_carries_the_yamls_and_resolves_them(tmp_path):
    """Build a wheel from a copy of the working tree (an in-tree build would leave build/ behind), check the
    YAMLs are inside it as package data, then run the CLI against the unpacked wheel from another folder."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for name in ("accelsim", "models", "hw_configs"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("accelsim-*.whl")

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for folder in KINDS.values():
        expected = {f"accelsim/{folder}/{n}" for n in yaml_names(REPO / folder)}
        assert expected and expected <= names, sorted(expected - names)
    assert not any(n.startswith(("models/", "hw_configs/")) for n in names)  # nothing top-level in site-packages
    topologies = {f"accelsim/models/scalesim/{p.name}" for p in (REPO / "models" / "scalesim").iterdir()}
    assert "accelsim/models/scalesim/LICENSE.scalesim" in topologies and topologies <= names

    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["resnet50", "--hw", "edge"], ["models/resnet50.yaml", "--hw", "hw_configs/edge.yaml"],
                 ["scalesim/Resnet50.csv", "--hw", "edge"]):
        out = run_fresh(site, elsewhere, "run", *args, "--quiet")
        assert out.returncode == 0, out.stderr
        assert f"package {site / 'accelsim' / '__init__.py'}" in out.stdout
        assert f"bundles {site / 'accelsim' / 'models'} {site / 'accelsim' / 'hw_configs'}" in out.stdout
        name = "Resnet50" if args[0].endswith(".csv") else "resnet50"
        assert f"model {name} on edge" in out.stdout
