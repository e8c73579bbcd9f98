#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the live demo (pass --gap 1 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wanotify demo "$@"
