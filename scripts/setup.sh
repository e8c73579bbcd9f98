#!/usr/bin/env bash
# Everything a fresh machine needs before the demo or the tests: a virtualenv with the
# project, RabbitMQ's management and Prometheus plugins, a running RabbitMQ and PostgreSQL
# (started if installed locally but stopped), and Prometheus/promtool for the ops tests.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
log "installing wanotify and its test dependencies into .venv"
.venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# setuptools warns on every editable install of a package whose folder is the repository itself
# (as here, by design: see pyproject.toml); the warning tells a user of this layout nothing.
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  return 1
}

if [ -z "${AMQP_URL:-}" ] && command -v rabbitmq-server >/dev/null 2>&1; then
  if ! port_open 5672; then
    log "starting RabbitMQ"
    rabbitmq-server -detached || true
    wait_port 5672 || { log "RabbitMQ did not start"; exit 1; }
  fi
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    log "enabling RabbitMQ management and prometheus plugins"
    rabbitmq-plugins enable --quiet rabbitmq_management rabbitmq_prometheus >/dev/null || true
    wait_port 15672 || log "management API not up yet (tests that need it will say so)"
  fi
fi

if [ -z "${DATABASE_URL:-}" ] && ! port_open 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port 5432 || { log "PostgreSQL did not start"; exit 1; }
fi

# The console's browser tests drive Debian's chromium through Playwright (pip, in the dev
# extra); Playwright cannot download browsers of its own here, so never `playwright install`.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing chromium from Debian's packages (for the console's browser tests)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
    >/dev/null 2>&1 || log "could not install chromium; the browser tests will report it"
fi

if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing Prometheus (promtool) from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
    >/dev/null 2>&1 || log "could not install prometheus; the ops tests will report it"
fi

# The README's snippets for other languages run in tests as their users run them: PHP with
# Debian's php-cli and php-amqplib, Node with amqplib from the npm registry (the versions in
# tests/snippets/node/package-lock.json).
if { ! command -v php >/dev/null 2>&1 || [ ! -f /usr/share/php/PhpAmqpLib/autoload.php ]; } \
   && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing php-cli and php-amqplib from Debian's packages (for the PHP snippets' tests)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends php-cli php-amqplib) \
    >/dev/null 2>&1 || log "could not install php-cli and php-amqplib; the PHP snippet tests will report it"
fi
if command -v npm >/dev/null 2>&1; then
  log "installing the Node snippets' amqplib (npm ci in tests/snippets/node)"
  (cd tests/snippets/node && npm ci --no-audit --no-fund --loglevel=error) >/dev/null 2>&1 \
    || log "npm ci failed in tests/snippets/node; the Node snippet tests will report it"
else
  log "npm is missing; install Node.js 18+ for the Node snippet tests"
fi
