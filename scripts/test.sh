#!/usr/bin/env bash
# One command on a fresh machine: set up, lint and type-check, then run the whole test suite
# (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff" >&2
.venv/bin/ruff check .
echo "==> mypy" >&2
.venv/bin/mypy shared producers consumers ops --ignore-missing-imports
echo "==> pytest" >&2
exec .venv/bin/pytest "$@"
