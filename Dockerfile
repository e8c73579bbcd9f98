# wanotify: one image for every process (migrate, run notifier|sender, publish, fake-provider...).
#   docker build -t wanotify .
#   docker run --rm wanotify --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs (no tests, no virtualenv, no git history).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY producers ./producers
COPY consumers ./consumers
COPY ops ./ops
RUN pip install . \
    && rm -rf /src \
    && useradd --create-home --uid 10001 --user-group wanotify

USER wanotify
WORKDIR /home/wanotify

# Metrics of `run notifier` / `run sender` (METRICS_PORT) and the fake provider's port.
EXPOSE 9101 9102 8089

ENTRYPOINT ["wanotify"]
CMD ["--help"]
