"""What `pasar up` hands each child: credentials, and no trust in forwarding headers."""

from __future__ import annotations

import json
from pathlib import Path

from pasar_cli.supervisor import Shop, child_environment, load_secrets


def test_products_gets_its_own_client_credentials(tmp_path: Path) -> None:
    secret = load_secrets(tmp_path)
    assert len(secret["products_client_secret"]) >= 32
    assert load_secrets(tmp_path) == secret  # kept across restarts
    env = child_environment(Shop(data_dir=tmp_path, base_port=8000), secret)

    clients = {c["client_id"]: c for c in json.loads(env["users"]["USERS_SERVICE_CLIENTS"])}
    assert clients["products"]["scopes"] == ["users:read"]
    assert clients["products"]["secret"] == secret["products_client_secret"]
    assert env["products"]["PRODUCTS_CLIENT_ID"] == "products"
    assert env["products"]["PRODUCTS_CLIENT_SECRET"] == secret["products_client_secret"]
    assert env["products"]["PRODUCTS_USERS_URL"] == "http://127.0.0.1:8001"
    # Every client of `pasar up` is 127.0.0.1: no child may believe X-Forwarded-For.
    for values in env.values():
        assert not any("FORWARDED" in name for name in values)
