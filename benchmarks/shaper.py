"""A userspace link shaper for the benchmarks: a TCP proxy that adds latency and limits the rate.

Benchmark code, not part of the library. ``tc qdisc ... netem`` needs a kernel module that some
machines lack (and shaping ``lo`` slows every loopback user of the machine); this proxy shapes
only the connections made through it::

    python benchmarks/shaper.py --target 127.0.0.1:9000 --delay 20ms --rate 1gbit

prints ``listening <port>`` and forwards every connection to ``--target``. Each direction of
each connection is delayed by ``--delay`` (so a round trip takes twice that, as ``netem delay``
on ``lo`` gives) and paced by two token buckets: one of the connection (``--conn-rate``, default
the link rate) and one shared by every connection and both directions (``--rate``: the link).
At most ``--buffer`` bytes wait in the proxy per direction, so TCP flow control still reaches
the sender.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time

__all__ = ["Bucket", "parse_delay", "parse_rate", "serve"]

_CHUNK = 64 << 10


def parse_rate(text: str) -> float:
    """Bytes per second of ``"1gbit"``, ``"100mbit"``, ``"500kbit"``, ``"125MB"`` (per second)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmg]?)(bit|b)?\s*", text.lower())
    if not match:
        raise ValueError(f"rate {text!r}: expected e.g. 1gbit, 100mbit or 125mb")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2)]
    value = float(match.group(1)) * scale
    return value / 8 if match.group(3) == "bit" else value


def parse_delay(text: str) -> float:
    """Seconds of ``"20ms"``, ``"0.5s"``, ``"250us"``."""
    match = re.fullmatch(r"\s*([\d.]+)\s*(us|ms|s)\s*", text.lower())
    if not match:
        raise ValueError(f"delay {text!r}: expected e.g. 20ms")
    return float(match.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[match.group(2)]


class Bucket:
    """A token bucket of ``rate`` bytes per second that goes into debt and makes callers wait.

    Args:
        rate: bytes per second.
        burst: bytes that may pass at once after an idle spell.
    """

    def __init__(self, *, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, size: int) -> float:
        """Take ``size`` bytes' tokens; returns the seconds to wait before sending them."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= size
        return max(0.0, -self.tokens / self.rate)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    delay: float,
    buckets: list[Bucket],
    buffer: int,
) -> None:
    queue: asyncio.Queue = asyncio.Queue(max(2, buffer // _CHUNK))

    async def receive() -> None:
        while True:
            data = await reader.read(_CHUNK)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def send() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            wait = max(bucket.take(len(data)) for bucket in buckets)
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    task = asyncio.ensure_future(receive())
    try:
        await send()
    except (ConnectionError, OSError):
        writer.close()  # a reset: end the other direction too
    finally:
        task.cancel()


async def serve(
    *, target: tuple[str, int], delay: float, rate: float, conn_rate: float, buffer: int
) -> None:
    """Listen on a free port of 127.0.0.1, print it, and shape every connection to ``target``."""
    burst = max(2 * _CHUNK, rate * 0.002)
    link = Bucket(rate=rate, burst=burst)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        conn = [Bucket(rate=conn_rate, burst=burst), Bucket(rate=conn_rate, burst=burst)]
        await asyncio.gather(
            _pump(client_r, server_w, delay=delay, buckets=[conn[0], link], buffer=buffer),
            _pump(server_r, client_w, delay=delay, buckets=[conn[1], link], buffer=buffer),
            return_exceptions=True,
        )
        for w in (client_w, server_w):
            w.close()

    live: set[asyncio.Task] = set()  # asyncio keeps only weak references to running tasks

    def hold(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(client_r, client_w))
        live.add(task)
        task.add_done_callback(live.discard)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay", default="20ms", help="one-way delay per direction")
    parser.add_argument("--rate", default="1gbit", help="the link's rate, all connections")
    parser.add_argument("--conn-rate", default="", help="one connection's rate (default: --rate)")
    parser.add_argument("--buffer", type=int, default=4 << 20, help="bytes queued per direction")
    args = parser.parse_args(argv)
    host, port = args.target.rsplit(":", 1)
    rate = parse_rate(args.rate)
    asyncio.run(
        serve(
            target=(host, int(port)),
            delay=parse_delay(args.delay),
            rate=rate,
            conn_rate=parse_rate(args.conn_rate) if args.conn_rate else rate,
            buffer=args.buffer,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
