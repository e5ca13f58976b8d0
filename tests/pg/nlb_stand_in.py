"""A stand-in for the pooler's Network Load Balancer with client IP preservation off: a TCP forwarder whose
connections to PgBouncer leave from an address of its own (any 127/8 address on Linux's loopback), so PgBouncer's
hba.conf sees that address, not the client's, as a target behind the NLB sees the NLB's private address."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def forwarder(target_port: int, from_address: str, target_host: str = "127.0.0.1") -> Iterator[int]:
    """Listen on 127.0.0.1 (the port is yielded) and forward each connection to target_host:target_port from
    `from_address`."""

    class Forward(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            client: socket.socket = self.request
            with socket.create_connection((target_host, target_port), timeout=10,
                                          source_address=(from_address, 0)) as upstream:
                upstream.settimeout(None)
                back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                back.start()
                _pump(client, upstream)
                back.join(10)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"nlb-stand-in-{from_address}", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
