#!/usr/bin/env bash
# One command on a fresh machine: set up, lint and type-check, then run the whole test suite
# (extra args go to pytest; PYTEST_WORKERS sets how many run side by side, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff" >&2
.venv/bin/ruff check .
echo "==> mypy" >&2
# mypy cannot follow the editable install's import hook: it reads the `wanotify` package through
# a folder of links shaped like the installed package.
rm -rf build/typecheck && mkdir -p build/typecheck/wanotify
for folder in shared producers consumers ops; do ln -s "../../../$folder" "build/typecheck/wanotify/$folder"; done
MYPYPATH=build/typecheck .venv/bin/mypy -p wanotify  # strict, as pyproject.toml sets it
# Most tests run side by side (each pytest worker has its own database and queue names);
# the ones that stop or restart RabbitMQ or PostgreSQL run afterwards, alone.
# Exit code 5 means "no test selected" (for example -k matched only the other group).
run_pytest() {
  local rc=0
  .venv/bin/pytest "$@" || rc=$?
  [ "$rc" = 5 ] && rc=0
  return "$rc"
}
echo "==> pytest: all but the outage tests, ${PYTEST_WORKERS:-3} workers" >&2
status=0
run_pytest -m "not outage" -n "${PYTEST_WORKERS:-3}" "$@" || status=$?
echo "==> pytest: the outage tests, alone" >&2
run_pytest -m outage "$@" || status=$?
exit "$status"
