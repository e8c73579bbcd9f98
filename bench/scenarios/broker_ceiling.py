"""1. broker_ceiling: what one Python process gets out of this broker, the reference for ingest.

Persistent messages (about the size of an event) to a durable classic queue: publishes with
confirms and a fixed number in flight, then manual-ack consumption (one ack per message), then a
"pipe" (batches of deliveries republished confirmed to a second queue, then one multiple-ack):
the notifier's broker work without its database and rendering. All with aio-pika, the library the product uses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aio_pika

from bench.config import AMQP_URL
from bench.env import namespace
from bench.scenarios import Context

BODY = (b'{"event_id":"6f1c2d3e-8a9b-4c5d-9e0f-112233445566","event_type":"member.registered",'
        b'"occurred_at":"2026-11-22T10:00:00Z","source":"bench","data":{"member_id":"B-1",'
        b'"name":"Bench 1","phone":"081200000001"}}')


def run(ctx: Context) -> dict[str, Any]:
    n, in_flight = ctx.sizes.broker_messages, ctx.sizes.broker_in_flight
    metrics = asyncio.run(_measure(namespace("broker"), n, in_flight))
    metrics["ceiling_msgs_per_s"] = min(metrics["publish_msgs_per_s"], metrics["consume_msgs_per_s"])
    return {"metrics": metrics, "goals": [],
            "notes": f"{n} persistent messages, {in_flight} publishes in flight, prefetch {in_flight}; "
                     "ceiling = min(publish, consume)"}


async def _measure(ns: str, n: int, in_flight: int) -> dict[str, Any]:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=in_flight)
        first = await channel.declare_queue(f"{ns}.a", durable=True)
        second = await channel.declare_queue(f"{ns}.b", durable=True)
        try:
            publish = await _publish(channel, first.name, n, in_flight)
            consume = await _consume(first, n)
            await _publish(channel, first.name, n, in_flight)
            pipe = await _pipe(channel, first, second.name, n)
        finally:
            await first.delete(if_unused=False, if_empty=False)
            await second.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return {"publish_msgs_per_s": round(n / publish), "consume_msgs_per_s": round(n / consume),
            "pipe_msgs_per_s": round(n / pipe), "messages": n, "in_flight": in_flight}


async def _publish(channel: aio_pika.abc.AbstractChannel, queue: str, n: int, in_flight: int) -> float:
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:  # shared iterator: n publishes in all, in_flight at a time
            await channel.default_exchange.publish(
                aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - began


async def _consume(queue: aio_pika.abc.AbstractQueue, n: int) -> float:
    done = asyncio.Event()
    count = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal count
        await message.ack()
        count += 1
        if count >= n:
            done.set()

    began = time.perf_counter()
    tag = await queue.consume(on_message)
    await asyncio.wait_for(done.wait(), timeout=max(60.0, n / 500))
    elapsed = time.perf_counter() - began
    await queue.cancel(tag)
    return elapsed


async def _pipe(channel: aio_pika.abc.AbstractChannel, source: aio_pika.abc.AbstractQueue, target: str,
                n: int, batch: int = 200) -> float:
    """Take up to ``batch`` deliveries, publish confirmed copies concurrently, ack them with one
    multiple-ack: the notifier's broker work, without its database and rendering."""
    inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    count = 0
    began = time.perf_counter()
    tag = await source.consume(inbox.put)
    deadline = began + max(60.0, n / 300)
    while count < n and time.perf_counter() < deadline:
        taken = [await inbox.get()]
        while len(taken) < batch and not inbox.empty():
            taken.append(inbox.get_nowait())
        await asyncio.gather(*(channel.default_exchange.publish(
            aio_pika.Message(m.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=target)
            for m in taken))
        await taken[-1].ack(multiple=True)
        count += len(taken)
    elapsed = time.perf_counter() - began
    await source.cancel(tag)
    return elapsed
