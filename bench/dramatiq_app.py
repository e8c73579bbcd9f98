"""The Dramatiq peer: pacing WhatsApp calls with Dramatiq's rate limiters on the same RabbitMQ.

Dramatiq's limiters keep their state in a shared backend; here Redis (``BENCH_REDIS_URL``,
default ``redis://127.0.0.1:6379/0``; keys are prefixed with the bench queue's name and expire
on their own). Start workers with::

    BENCH_PROVIDER_URL=http://127.0.0.1:PORT BENCH_DRAMATIQ_QUEUE=NAME BENCH_DRAMATIQ_LIMITER=bucket \\
        python -m dramatiq bench.dramatiq_app --processes 1 --threads 1 --queues NAME

Two ways to keep a gap of ``BENCH_GAP_MS`` between calls, each as Dramatiq documents its limiter:

- ``bucket``: ``BucketRateLimiter(limit=1, bucket=gap)``: at most one call per fixed time window
  of ``gap`` ms (windows are aligned to the clock, so a call at the end of one window and the
  next at the start of the following one are closer than the gap);
- ``mutex``: ``ConcurrentRateLimiter(limit=1)`` as a distributed mutex held for the call and the
  rest of the gap (a concurrency limiter knows no time, so the holder sleeps out the gap).

A task that finds the limiter full raises ``RateLimitExceeded`` and Dramatiq's Retries
middleware tries it again after a short back-off (``min_backoff`` = the gap), as its docs show.
"""

from __future__ import annotations

import os
import time

import dramatiq
import requests
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.rate_limits import BucketRateLimiter, ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from bench.peer_call import post_text

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_DRAMATIQ_QUEUE", "wanotify-bench.dramatiq")
LIMITER = os.environ.get("BENCH_DRAMATIQ_LIMITER", "bucket")
GAP_MS = int(os.environ.get("BENCH_GAP_MS", "50"))
PROVIDER_URL = os.environ.get("BENCH_PROVIDER_URL", "http://127.0.0.1:8089")

broker = RabbitmqBroker(url=AMQP_URL)
dramatiq.set_broker(broker)
backend = RedisBackend(url=REDIS_URL)
# A mutex held by a killed worker is freed after its ttl: longer than any call plus gap.
limiter = (BucketRateLimiter(backend, f"{QUEUE}-bucket", limit=1, bucket=GAP_MS) if LIMITER == "bucket"
           else ConcurrentRateLimiter(backend, f"{QUEUE}-mutex", limit=1, ttl=GAP_MS + 10_000))
_session = requests.Session()


@dramatiq.actor(queue_name=QUEUE, max_retries=100_000, min_backoff=GAP_MS, max_backoff=GAP_MS * 4)
def send_whatsapp(to: str, body: str) -> None:
    with limiter.acquire():
        started = time.monotonic()
        post_text(_session, PROVIDER_URL, to, body)
        if LIMITER == "mutex":
            time.sleep(max(0.0, GAP_MS / 1000 - (time.monotonic() - started)))
