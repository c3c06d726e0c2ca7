"""The administrative commands, run as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest
from shoplib import Fleet, login, users_env
from testdata import ORDERS_SECRET


def pasar(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pasar_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def sqlite_only() -> None:
    # These commands write the data dir's SQLite files; the server-database legs run
    # the same code through pasar up in tests/e2e.
    if os.environ.get("PASAR_TEST_DB", "sqlite") != "sqlite":
        pytest.skip("exercises the data-dir SQLite files")


@pytest.mark.usefixtures("sqlite_only")
def test_seed_is_idempotent(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    first = pasar("seed", "--data-dir", data)
    assert first.returncode == 0, first.stderr
    assert "37 products added" in first.stdout and "created" in first.stdout
    # Each demo product's drawn picture: the original and three variants.
    assert len(list((tmp_path / "var" / "images").rglob("*.webp"))) == 37 * 3
    again = pasar("seed", "--data-dir", data)
    assert again.returncode == 0, again.stderr
    assert "0 products added" in again.stdout and "already there" in again.stdout


@pytest.mark.usefixtures("sqlite_only")
def test_create_admin_and_rotate_key(tmp_path: Path) -> None:
    data = tmp_path / "var"
    created = pasar("create-admin", "--email", "boss@example.com", "--password", "boss-pass-1",
                    "--data-dir", str(data))  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "boss@example.com is an admin" in created.stdout
    rotated = pasar("rotate-key", "--data-dir", str(data))
    assert rotated.returncode == 0, rotated.stderr
    assert "new signing key" in rotated.stdout
    kid = rotated.stdout.split("new signing key", 1)[1].strip()

    # The User-Service on that data dir: the new admin logs in, and the new key signs.
    with Fleet(tmp_path) as fleet:
        users = fleet.add(
            "users", users_env(f"sqlite+aiosqlite:///{data / 'users.db'}", ORDERS_SECRET)
        )
        users.start()
        users.wait_ready()
        token = login(users.url, "boss@example.com", "boss-pass-1")
        me = httpx.get(f"{users.url}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["role"] == "admin"
        assert jwt.get_unverified_header(token)["kid"] == kid
        jwks = httpx.get(f"{users.url}/.well-known/jwks.json")
        assert kid in {key["kid"] for key in jwks.json()["keys"]}, jwks.text


def test_status_reports_down_services_with_a_nonzero_exit() -> None:
    result = pasar("status", "--base-port", "1")  # nothing listens on 1, 2, 3, 4
    assert result.returncode == 1
    assert result.stdout.count("down") == 4


def test_config_lists_every_service_variable() -> None:
    result = pasar("config")
    assert result.returncode == 0, result.stderr
    for name in ("USERS_SERVICE_CLIENTS=", "PRODUCTS_RESERVATION_TTL_SECONDS=900",
                 "ORDERS_PAYMENT_PROVIDER=none", "WEB_ORDERS_URL=http://127.0.0.1:8003",
                 "WEB_DEFAULT_LANGUAGE=id"):  # fmt: skip
        assert name in result.stdout


def test_serve_refuses_bad_configuration_in_one_line() -> None:
    result = pasar("serve", "orders", env={"ORDERS_HTTP_TIMEOUT": "soon"})
    assert result.returncode == 1
    assert result.stderr.startswith("pasar: invalid configuration for orders: ORDERS_HTTP_TIMEOUT")
    assert "Traceback" not in result.stderr
