"""``python -m bench.publisher``: an upstream app publishing a burst of events, as fast as it can.

It uses the product's ``AsyncEventPublisher`` (persistent, mandatory, confirmed) with a fixed
number of publishes in flight, and writes what it did as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from bench import events
from wanotify.producers import AsyncEventPublisher

KINDS = {"registered": events.registered, "payment_link": events.payment_link}


async def publish_burst(amqp_url: str, ns: str, count: int, start: int = 0, kind: str = "registered",
                        in_flight: int = 400) -> dict[str, float]:
    make = KINDS[kind]
    indexes = iter(range(start, start + count))
    async with AsyncEventPublisher(amqp_url, ns, source="bench") as publisher:
        async def worker() -> int:
            done = 0
            for i in indexes:  # shared iterator: each index is taken by exactly one worker
                event_type, data = make(i)
                await publisher.publish(event_type, data)
                done += 1
            return done

        began = time.time()
        published = sum(await asyncio.gather(*(worker() for _ in range(max(1, min(in_flight, count))))))
        ended = time.time()
    return {"published": published, "started": began, "finished": ended,
            "rate": published / max(ended - began, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publisher")
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--kind", choices=sorted(KINDS), default="registered")
    parser.add_argument("--in-flight", type=int, default=400)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()
    result = asyncio.run(publish_burst(args.amqp_url, args.namespace, args.count, args.start, args.kind,
                                       args.in_flight))
    args.result.write_text(json.dumps(result))
    print(f"published {result['published']} events at {result['rate']:.0f}/s", flush=True)


if __name__ == "__main__":
    main()
