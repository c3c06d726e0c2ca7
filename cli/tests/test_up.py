"""`pasar up` as an operator meets it: real processes, real signals, one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from shoplib import ADMIN_EMAIL, ADMIN_PASSWORD, free_base_port, login, pid_on_port, start_shop


def run_up(data_dir: Path, base_port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pasar_cli.main", "up", "--data-dir", str(data_dir),
         "--base-port", str(base_port)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PASAR_ADMIN_EMAIL": ADMIN_EMAIL,
             "PASAR_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )  # fmt: skip


def test_up_serves_restarts_a_dead_child_and_stops_cleanly(tmp_path: Path) -> None:
    shop = start_shop(tmp_path / "var", free_base_port())
    try:
        for name in ("web", "users", "products", "orders"):
            assert httpx.get(f"{shop.url(name)}/readyz", timeout=5).status_code == 200
        output = "".join(shop.output)
        assert f"admin login: {ADMIN_EMAIL}" in output
        assert "/docs" in output
        # The shop a person opens comes first, and it shows the demo catalogue.
        table = output.split("pasar is running:")[1].splitlines()
        assert table[1].split()[:2] == ["web", shop.url("web")]
        storefront = httpx.get(shop.url("web"), timeout=10)
        assert storefront.status_code == 200 and "Kopi Arabika Gayo" in storefront.text

        # A second `pasar up` on the same data dir refuses, in one line.
        second = run_up(tmp_path / "var", free_base_port())
        assert second.returncode == 1
        assert second.stderr.strip().count("\n") == 0
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr + second.stdout

        # Kill the products child: the supervisor brings it back.
        pid = pid_on_port(shop.base_port + 2)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 90  # generous: CI machines are busy
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{shop.url('products')}/readyz", timeout=1).status_code == 200
                if ready and pid_on_port(shop.base_port + 2) != pid:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("products was not restarted:\n" + "".join(shop.output[-20:]))
        assert any("products exited" in line for line in shop.output)
        assert login(shop.url("users"), ADMIN_EMAIL, ADMIN_PASSWORD)
    finally:
        code = shop.stop()
    assert code == 0
    # Every child is gone with the parent.
    for offset in (0, 1, 2, 3):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", shop.base_port + offset))


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    base = free_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 2))
        squatter.listen()
        result = run_up(tmp_path / "var", base)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"pasar: port {base + 2} (products) is already in use; free it or pass --base-port"
    )


def test_sigterm_stops_everything_with_exit_code_zero(tmp_path: Path) -> None:
    shop = start_shop(tmp_path / "var", free_base_port())
    shop.process.send_signal(signal.SIGTERM)
    assert shop.process.wait(timeout=30) == 0
    # Each child was stopped gracefully (SIGTERM, its own shutdown), none killed.
    deadline = time.monotonic() + 5  # the output is read by a thread
    while time.monotonic() < deadline:
        stopped = [line for line in shop.output if "of the grace period unused" in line]
        if len(stopped) == 4:
            break
        time.sleep(0.1)
    names = sorted(line.split()[2] for line in stopped)
    assert names == ["orders", "products", "users", "web"], "".join(shop.output[-30:])
