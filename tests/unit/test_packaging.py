"""pyproject.toml's package list says what the repository holds: every folder under shared/,
consumers/, producers/ and ops/ with files to install is a package of the list (data folders
too), and every file is either installed or one of the deployment files read from the
repository. tests/e2e/test_install.py installs the result into a clean venv."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
# Each top-level folder installs under the one `wanotify` package.
ROOTS = {"shared": "wanotify.shared", "consumers": "wanotify.consumers", "producers": "wanotify.producers",
         "ops": "wanotify.ops"}
# Read from the repository by docker-compose, RabbitMQ and Grafana, never by installed code.
DEPLOYMENT_ONLY = ("ops/grafana/*", "ops/prometheus/*", "ops/rabbitmq/*.json", "ops/rabbitmq/*.conf",
                   "ops/rabbitmq/enabled_plugins")


def source_files(root: Path = ROOT) -> list[Path]:
    """The files under the four folders, relative to ``root`` (the repository, or a copy of it)."""
    return sorted(path.relative_to(root) for top in ROOTS for path in (root / top).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")


def package_of(folder: Path) -> str:
    top, *rest = folder.parts
    return ".".join([ROOTS[top], *rest])


def is_package_data(path: Path) -> bool:
    patterns = PYPROJECT.get("package-data", {}).get(package_of(path.parent), [])
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)


def is_installed(path: Path) -> bool:
    return path.suffix == ".py" or is_package_data(path)


def test_the_top_level_folders_map_to_the_wanotify_package() -> None:
    assert PYPROJECT["package-dir"] == {package: folder for folder, package in ROOTS.items()}


def test_the_packages_list_is_every_folder_with_files_to_install() -> None:
    folders = {package_of(path.parent) for path in source_files() if is_installed(path)}
    listed = set(PYPROJECT["packages"])
    assert not folders - listed, f"folders with files to install that pyproject.toml does not list: {sorted(folders - listed)}"
    assert not listed - folders, f"listed packages with nothing to install: {sorted(listed - folders)}"


def test_every_file_is_installed_or_a_deployment_file() -> None:
    left_out = [name for name in (path.as_posix() for path in source_files() if not is_installed(path))
                if not any(fnmatch.fnmatch(name, pattern) for pattern in DEPLOYMENT_ONLY)]
    assert left_out == [], "files no package installs: add their folder to packages and package-data in pyproject.toml"

