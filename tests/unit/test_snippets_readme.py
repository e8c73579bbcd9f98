"""The README's snippets for other languages are the files tests/e2e/test_snippets.py runs:
each file under tests/snippets is one of the README's code blocks, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "tests" / "snippets"
# The Node folder's package files set up the tests; they are not snippets.
NOT_SNIPPETS = {"package.json", "package-lock.json"}


def snippet_files() -> list[Path]:
    return sorted(path for path in SNIPPETS.rglob("*")
                  if path.is_file() and "node_modules" not in path.parts and path.name not in NOT_SNIPPETS)


def readme_blocks() -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```$", (ROOT / "README.md").read_text(), flags=re.DOTALL | re.MULTILINE)


def test_there_is_a_snippet_per_language_and_way() -> None:
    names = {path.relative_to(SNIPPETS).as_posix() for path in snippet_files()}
    assert {"php/publish_amqp.php", "php/laravel_http.php", "php/publish_http.php", "node/publish_amqp.mjs",
            "node/publish_http.mjs", "curl/publish_event.sh", "python/consume_status.py"} <= names


@pytest.mark.parametrize("path", snippet_files(), ids=lambda p: p.relative_to(SNIPPETS).as_posix())
def test_each_snippet_file_is_a_readme_code_block(path: Path) -> None:
    assert path.read_text() in readme_blocks(), f"README.md has no code block equal to {path.relative_to(ROOT)}"
