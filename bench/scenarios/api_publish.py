"""10. api_publish: ``POST /api/v1/events`` against the same events published straight over AMQP.

ONE ``wanotify run web --only api`` process (its rate limit set out of the way) on 127.0.0.1,
a scratch database of its own (``wanotify_bench_api``: the key, the rules), and no notifier:
the events wait in the notifier queue, so what is measured is the way in, up to the broker's
confirm. Three runs of the same ``member.registered`` events, one after the other:

a) HTTP, one event per request: ``IN_FLIGHT`` kept-alive connections, each posting its next
   event as soon as the 202 arrives (the answer comes after the broker's confirm);
b) HTTP batches of ``BATCH`` events on ``BATCH_IN_FLIGHT`` connections (one latency per batch);
c) AMQP: the product's ``AsyncEventPublisher`` in this process (persistent, mandatory,
   confirmed) with ``IN_FLIGHT`` publishes at a time, as an upstream app speaking AMQP would.

Each gives events/s and the latency of one request or publish (p50/p99, from send to 202 or
confirm). The HTTP client is a few lines of asyncio streams, so the client costs little CPU
next to the server on a shared machine.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from bench import events, stats
from bench.config import AMQP_URL, DATABASE_URL
from bench.env import delete_namespace, namespace, process_env, settings
from bench.procs import Proc
from bench.scenarios import Context, goal
from wanotify.ops.admin.api_keys import create_key
from wanotify.ops.demo import prepare_database
from wanotify.producers import AsyncEventPublisher
from wanotify.shared.db.engine import drop_database, make_engine, session_factory, transaction

IN_FLIGHT, BATCH, BATCH_IN_FLIGHT = 16, 100, 4
API_DATABASE_URL = DATABASE_URL.rsplit("/", 1)[0] + "/wanotify_bench_api"
P99_GOAL_MS = 500


def run(ctx: Context) -> dict[str, Any]:
    count = ctx.sizes.api_events
    ns = namespace("api")
    drop_database(API_DATABASE_URL)
    prepare_database(API_DATABASE_URL)
    key = _create_key()
    env = process_env(settings(ns).with_(database_url=API_DATABASE_URL), API_RATE_LIMIT="1000000",
                      API_RATE_BURST="1000000")
    server = Proc("api", ["-m", "wanotify.ops.cli", "run", "web", "--only", "api", "--port", "0"], env, ctx.log_dir)
    try:
        port = int(re.findall(r"http://127\.0\.0\.1:(\d+)/", server.wait_for_log("web: serving"))[0])
        http = asyncio.run(_http_singles(port, key, count))
        batches = asyncio.run(_http_batches(port, key, count))
        amqp = asyncio.run(_amqp(ns, count))
        server_rss_mb = round(server.rss() / 2**20, 1)
    finally:
        server.stop()
        delete_namespace(ns)
        drop_database(API_DATABASE_URL)
    return {
        "metrics": {"events": count, "in_flight": IN_FLIGHT, "http": http, "http_batch": batches | {"batch": BATCH},
                    "amqp": amqp, "server_rss_mb": server_rss_mb,
                    "http_vs_amqp_rate": round(http["events_per_s"] / amqp["events_per_s"], 3)},
        "goals": [goal("HTTP events accepted (202)", http["accepted"], "==", count),
                  goal("HTTP batch events accepted (202)", batches["accepted"], "==", count),
                  goal("HTTP p99 latency (ms)", http["p99_ms"], "<=", P99_GOAL_MS)],
    }


def _create_key() -> str:
    engine = make_engine(API_DATABASE_URL, pool_size=1)
    try:
        with transaction(session_factory(engine)) as session:
            return create_key(session, "bench")
    finally:
        engine.dispose()


def _event(i: int, run_name: str) -> dict[str, Any]:
    event_type, data = events.registered(i)
    return {"event_type": event_type, "source": f"bench-{run_name}", "data": data}


async def _http_singles(port: int, key: str, count: int) -> dict[str, Any]:
    bodies = [json.dumps(_event(i, "http")).encode() for i in range(count)]
    return await _drive(port, key, "/api/v1/events", bodies, IN_FLIGHT, events_per_request=1)


async def _http_batches(port: int, key: str, count: int) -> dict[str, Any]:
    bodies = [json.dumps({"events": [_event(i, "batch") for i in range(start, min(start + BATCH, count))]}).encode()
              for start in range(0, count, BATCH)]
    result = await _drive(port, key, "/api/v1/events/batch", bodies, BATCH_IN_FLIGHT, events_per_request=BATCH)
    result["accepted"] = min(result["accepted"], count)  # the last batch may be short
    return result


async def _drive(port: int, key: str, path: str, bodies: list[bytes], connections: int,
                 events_per_request: int) -> dict[str, Any]:
    """Posts every body over ``connections`` kept-alive connections; events/s and per-request latency."""
    queue = iter(bodies)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in queue:  # shared iterator: each body is posted by exactly one connection
                began = time.perf_counter()
                status = await _post(reader, writer, path, key, body)
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    seconds = time.perf_counter() - began
    accepted = statuses.get(202, 0) * events_per_request
    return {"accepted": accepted, "statuses": {str(k): v for k, v in statuses.items()}, "seconds": round(seconds, 3),
            "events_per_s": round(accepted / seconds, 1), **stats.summary_ms(latencies)}


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, key: str, body: bytes) -> int:
    head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    reply_head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in reply_head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return int(reply_head.split(b" ", 2)[1])


async def _amqp(ns: str, count: int) -> dict[str, Any]:
    indexes = iter(range(count))
    latencies: list[float] = []
    async with AsyncEventPublisher(AMQP_URL, ns, source="bench-amqp") as publisher:
        async def worker() -> None:
            for i in indexes:
                event_type, data = events.registered(i)
                began = time.perf_counter()
                await publisher.publish(event_type, data)
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        seconds = time.perf_counter() - began
    return {"published": len(latencies), "seconds": round(seconds, 3),
            "events_per_s": round(len(latencies) / seconds, 1), **stats.summary_ms(latencies)}
