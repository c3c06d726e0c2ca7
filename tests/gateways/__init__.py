"""Local stand-ins for the payment gateways' HTTP APIs (Midtrans, Xendit).

The gateways cannot be reached from a test run, so each stand-in serves, on a loopback
port, the endpoints pasar calls, keeps its payments in memory, and sends the gateway's
notification, signed as the real one is (a test server key, a test callback token), when
a test tells it that the customer paid or that the payment expired. pasar's real
provider code talks to it over HTTP. They live with the tests, never in the product.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, Request


def basic_user(request: Request) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header (the gateways' key)."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, _password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread of its own (for the e2e tests,
    whose event loops last one test while the stand-in serves a whole module)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the stand-in did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
