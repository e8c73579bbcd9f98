"""The Celery peer: the usual way to "send WhatsApp messages at a pace" with a task queue.

One task that POSTs a text message to the (fake) Cloud API, with ``rate_limit`` set to the
pace wanotify keeps (``BENCH_CELERY_RATE``, e.g. "20/s" for a 50 ms gap). Start workers with::

    BENCH_PROVIDER_URL=http://127.0.0.1:PORT BENCH_CELERY_QUEUE=NAME \\
        python -m celery -A bench.celery_app worker -c 1 -Q NAME -n w1@bench

Why the pace is not kept: Celery's ``rate_limit`` is enforced *per worker*. Each worker's
consumer keeps its own token bucket for the task type, in its own memory, and no worker knows
what the others send; the broker only hands out messages. Two workers at "20/s" can make 40
calls a second, and even one worker only spaces the *starts of execution* it releases, with
no record that survives a restart. wanotify's gap is global instead: one active consumer on
the send queue, and the start of every call recorded in PostgreSQL.
"""

from __future__ import annotations

import os

import requests
from celery import Celery

from bench.peer_call import post_text

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "wanotify-bench.celery")
RATE = os.environ.get("BENCH_CELERY_RATE", "20/s")
PROVIDER_URL = os.environ.get("BENCH_PROVIDER_URL", "http://127.0.0.1:8089")

app = Celery("wanotify_bench", broker=AMQP_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_enable_remote_control=False,  # no pidbox queues left behind on the broker
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_session = requests.Session()


@app.task(name="bench.send_whatsapp", rate_limit=RATE)
def send_whatsapp(to: str, body: str) -> str | None:
    return post_text(_session, PROVIDER_URL, to, body)
