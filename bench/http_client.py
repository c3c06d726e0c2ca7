"""Caller CPU per service-to-service hop: aiohttp vs httpx, on the loopback.

Starts a minimal uvicorn server in a child process, then makes N sequential GETs with
each client and reports the caller's CPU time per request (process_time), which is what
a hop costs the calling service. Usage: python bench/http_client.py [N]
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

SERVER = """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def with_aiohttp(url: str, n: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(url) as r:
                await r.read()
        start = time.process_time()
        for _ in range(n):
            async with session.get(url) as r:
                await r.json()
        return (time.process_time() - start) / n


async def with_httpx(url: str, n: int) -> float:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(50):
            await client.get(url)
        start = time.process_time()
        for _ in range(n):
            (await client.get(url)).json()
        return (time.process_time() - start) / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        a = asyncio.run(with_aiohttp(url, n))
        h = asyncio.run(with_httpx(url, n))
        print(f"requests per client: {n}")
        print(f"aiohttp: {a * 1000:.3f} ms caller CPU per request")
        print(f"httpx:   {h * 1000:.3f} ms caller CPU per request")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
