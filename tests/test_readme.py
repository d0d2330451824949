"""Every command of the README runs on a fresh copy of the repository, with no folder beside it, and prints what
the README shows; README.md and docs/ point only at files inside the repository.

The README's ```console blocks hold ``$ accelsim ...`` lines, each followed by its whole output (made short by
the command's own flags, never edited by hand); the set-up block holds the two set-up commands, whose
``pip install`` parts are skipped here and whose accelsim part must run. After a change that moves a number,
``python tests/test_readme.py --update`` rewrites the outputs in README.md (review the diff).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: run the CLI from the copy only: drop an editable-install finder that would map ``accelsim`` elsewhere
PRELUDE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
import accelsim
from pathlib import Path
if Path(accelsim.__file__).resolve().parents[1] != Path.cwd().resolve():
    sys.exit(f"accelsim imported from {accelsim.__file__}, not from the copy")
from accelsim.cli import main
sys.exit(main(sys.argv[1:]))
"""
SLOW_FLAGS = ("--eval",)     # real-model evaluations: seconds to tens of seconds each


def console_blocks(text: str) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of every ``$ `` line in the ```console blocks, in order."""
    out = []
    for block in re.findall(r"^```console\n(.*?)^```", text, re.S | re.M):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *lines = chunk.rstrip("\n").split("\n")
            out.append((command, lines))
    return out


def setup_commands(text: str) -> list[str]:
    """The lines of the ```bash block under the "Set up" heading."""
    section = text.split("\n## Set up", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()


def run_accelsim(command: str, cwd: Path) -> subprocess.CompletedProcess:
    args = shlex.split(command)
    assert args[0] == "accelsim", command
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(cwd), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-c", PRELUDE, *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def output_lines(proc: subprocess.CompletedProcess) -> list[str]:
    lines = [line.rstrip() for line in proc.stdout.rstrip("\n").split("\n")]
    return lines if lines != [""] else []


def fresh_copy(dest: Path) -> Path:
    """The repository's tracked (and new, not ignored) files, as they are in the working tree, copied to ``dest``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell the repository's files")    # outside pytest: exits
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fresh") / "accelsim"
    fresh_copy(root)
    assert [p.name for p in root.parent.iterdir()] == ["accelsim"]      # nothing beside it
    return root


TEXT = README.read_text(encoding="utf-8")
EXAMPLES = console_blocks(TEXT)


def _param(command: str):
    marks = [pytest.mark.slow] if any(flag in shlex.split(command) for flag in SLOW_FLAGS) else []
    return pytest.param(command, id=command[:60], marks=marks)


def test_readme_has_a_result_table_two_setup_commands_and_five_examples():
    first_screen = TEXT.split("\n## ", 1)[0]
    assert "```console\n$ accelsim" in first_screen and len(first_screen.splitlines()) <= 45
    assert len(setup_commands(TEXT)) == 2
    assert len(EXAMPLES) == 6                    # the first screen's table and five examples


@pytest.mark.parametrize("command", [_param(c) for c, _ in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(copy, command):
    expected = dict(EXAMPLES)[command]
    proc = run_accelsim(command, copy)
    assert proc.returncode == 0, proc.stderr
    got = output_lines(proc)
    assert got == expected, ("README output differs; if the change is intended, run "
                             "`python tests/test_readme.py --update` and review the diff\n" + "\n".join(got))


def test_setup_commands_install_run_and_test_as_ci_does(copy):
    install, tests = setup_commands(TEXT)
    parts = [p.strip() for p in install.split("&&")]
    assert parts[0] == "pip install -e ." and all(p.startswith("accelsim ") for p in parts[1:])
    for command in parts[1:]:
        proc = run_accelsim(command, copy)
        assert proc.returncode == 0, proc.stderr
        assert "model resnet50 on edge" in proc.stdout
    ci = (REPO / ".ci" / "run").read_text()
    pip_dev, pip_data, pytest_all = (p.strip() for p in tests.split("&&"))
    assert pip_dev == 'pip install -e ".[dev]"' and '-e ".[dev]"' in ci
    assert pip_data == "pip install --no-deps -r requirements-data.txt" and "--no-deps -r requirements-data.txt" in ci
    assert pytest_all == 'python -m pytest -m "slow or not slow"' and '-m "slow or not slow"' in ci


DOCS = [README, *sorted((REPO / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_point_only_inside_the_repository(page):
    text = page.read_text(encoding="utf-8")
    assert "shared" not in text                                   # e.g. a folder beside the checkout
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        path = (page.parent / target).resolve()
        assert path.is_relative_to(REPO) and path.exists(), f"{page.name}: broken link {target}"


def update_readme(workdir: Path) -> None:
    """Rewrite the output under every ``$ accelsim`` line of README.md with what the command prints now, run
    in a fresh copy of the repository made in ``workdir`` (so output files land there)."""
    text = README.read_text(encoding="utf-8")
    root = fresh_copy(workdir / "accelsim")

    def block(match: re.Match) -> str:
        body = []
        for chunk in re.split(r"^\$ ", match.group(1), flags=re.M)[1:]:
            command = chunk.split("\n", 1)[0]
            proc = run_accelsim(command, root)
            if proc.returncode:
                raise SystemExit(f"{command}: exit {proc.returncode}\n{proc.stderr}")
            body.append("\n".join([f"$ {command}", *output_lines(proc)]) + "\n")
        return "```console\n" + "".join(body) + "```"

    README.write_text(re.sub(r"^```console\n(.*?)^```", block, text, flags=re.S | re.M), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit(f"usage: python {Path(__file__).relative_to(REPO)} --update")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        update_readme(Path(tmp))
