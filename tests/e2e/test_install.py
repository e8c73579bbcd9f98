"""wanotify installed as an upstream app installs it: non-editable, into a clean venv. The app
gets the one `wanotify` package (the publisher imports), no top-level `shared`, `ops`,
`consumers` or `producers`, every file the packages hold, and setuptools has nothing to warn
about packages.

The venv is made once for the module: without pip (the project's pip installs into it with
``--python``), so it holds the standard library and wanotify alone. ``--no-deps`` keeps the
install offline but for the build backend (setuptools, from pip's configured index); the
import check borrows the third-party libraries from the project's venv, placed *after* the
clean venv's own site-packages so that wanotify itself can only come from the install."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_packaging import ROOTS, is_installed, source_files

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("shared", "ops", "consumers", "producers")
# What setuptools says when the package list and the folders disagree.
PACKAGE_WARNINGS = ("absent from the `packages` configuration", "as data is deprecated", "BuildBackendWarning",
                    "SetuptoolsDeprecationWarning", "SetuptoolsWarning")

IMPORT_CHECK = """
import importlib.util, json, sys
sys.path.append(sys.argv[1])  # third-party libraries, after the venv's own site-packages
import wanotify.producers
from wanotify.producers import EventPublisher
print(json.dumps({
    "producers": wanotify.producers.__file__,
    "publisher": EventPublisher.__module__,
    "top_level": {name: importlib.util.find_spec(name) is not None for name in sys.argv[2:]},
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """(the clean venv, the copy of the sources it was installed from, the install's output)."""
    work = tmp_path_factory.mktemp("install")
    # The build writes build/ and *.egg-info next to its source: build a copy, not the shared tree.
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for top in ROOTS:
        shutil.copytree(ROOT / top, source / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-v",
                           "--no-deps", "--disable-pip-version-check", str(source)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    yield venv, source, done.stdout + done.stderr


def site_packages(venv: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))


def test_the_install_is_non_editable_and_setuptools_warns_about_no_package(installed):
    venv, _, output = installed
    warned = [line for line in output.splitlines() if any(text in line for text in PACKAGE_WARNINGS)]
    assert warned == []
    assert (site_packages(venv) / "wanotify" / "producers" / "publisher.py").is_file()
    assert not list(site_packages(venv).glob("__editable__*"))


def test_the_app_imports_the_publisher_from_wanotify_and_no_top_level_package(installed, tmp_path):
    venv, _, _ = installed
    done = subprocess.run([str(venv / "bin" / "python"), "-c", IMPORT_CHECK, sysconfig.get_path("purelib"), *TOP_LEVEL],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["producers"].startswith(str(site_packages(venv)))
    assert found["publisher"].startswith("wanotify.producers")
    assert found["top_level"] == dict.fromkeys(TOP_LEVEL, False)


def test_every_file_the_packages_hold_is_installed(installed):
    venv, source, _ = installed
    target = site_packages(venv) / "wanotify"
    missing = [path.as_posix() for path in source_files(source) if is_installed(path) and not (target / path).is_file()]
    assert missing == []
    assert (target / "ops" / "web" / "console" / "templates" / "base.html").is_file()
    assert (target / "shared" / "seed" / "rules.toml").is_file()
