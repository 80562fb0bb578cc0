"""A separate process that consumes one topic through the kit's FastStream broker.

Used by the integration tests to prove a publish in one process reaches a subscriber in another
through the real Kafka. Prints one JSON line per message: body and headers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from meshkit.events.broker import build_broker, start_with_retry


async def main(bootstrap: str, topic: str, group: str) -> None:
    broker = build_broker(
        bootstrap, service="peer", tracer_provider=TracerProvider(), registry=CollectorRegistry()
    )

    @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK)
    async def handle(body: bytes, message: KafkaMessage) -> None:
        headers = {k: v for k, v in message.headers.items()}
        print(
            json.dumps(
                {
                    "body": body.decode(),
                    "key": (message.raw_message.key or b"").decode(),  # type: ignore[union-attr]
                    "headers": headers,
                }
            ),
            flush=True,
        )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await start_with_retry(broker, bootstrap)
    print(json.dumps({"subscribed": topic}), flush=True)
    await stop.wait()
    await broker.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
