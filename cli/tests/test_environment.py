"""What `pasar up` hands each child: credentials, and no trust in forwarding headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasar_cli.supervisor import Shop, child_environment, load_secrets, print_table


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


def test_products_keeps_images_in_the_data_dir_and_says_where_it_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRODUCTS_IMAGE_DIR", raising=False)
    monkeypatch.delenv("PRODUCTS_PUBLIC_URL", raising=False)
    monkeypatch.delenv("WEB_IMAGE_ORIGINS", raising=False)
    env = child_environment(Shop(data_dir=tmp_path, base_port=9100), load_secrets(tmp_path))
    assert env["products"]["PRODUCTS_IMAGE_DIR"] == str(tmp_path.resolve() / "images")
    assert env["products"]["PRODUCTS_PUBLIC_URL"] == "http://127.0.0.1:9102"
    # The storefront's pages may show them (its CSP allows the products service).
    assert env["web"]["WEB_IMAGE_ORIGINS"] == "https: http://127.0.0.1:9102"

    monkeypatch.setenv("PRODUCTS_IMAGE_DIR", "/srv/pasar/images")
    monkeypatch.setenv("PRODUCTS_PUBLIC_URL", "https://img.shop.example")
    env = child_environment(Shop(data_dir=tmp_path, base_port=9100), load_secrets(tmp_path))
    assert env["products"]["PRODUCTS_IMAGE_DIR"] == "/srv/pasar/images"
    assert env["products"]["PRODUCTS_PUBLIC_URL"] == "https://img.shop.example"
    assert env["web"]["WEB_IMAGE_ORIGINS"] == "https: https://img.shop.example"


def test_users_writes_mail_into_the_data_dir_with_links_to_the_storefront(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("USERS_MAIL_DIR", "USERS_STOREFRONT_URL", "USERS_MAIL_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    shop = Shop(data_dir=tmp_path, base_port=9100)
    env = child_environment(shop, load_secrets(tmp_path))
    assert env["users"]["USERS_MAIL_DIR"] == str(tmp_path.resolve() / "mail")
    # The storefront is the web service, on the base port.
    assert env["users"]["USERS_STOREFRONT_URL"] == shop.url("web") == "http://127.0.0.1:9100"
    print_table(shop, "admin@pasar.local", "pw")
    assert f"mail:     written to {tmp_path.resolve() / 'mail'}" in capsys.readouterr().out

    monkeypatch.setenv("USERS_STOREFRONT_URL", "https://toko.example")
    monkeypatch.setenv("USERS_MAIL_TRANSPORT", "smtp")
    env = child_environment(shop, load_secrets(tmp_path))
    assert env["users"]["USERS_STOREFRONT_URL"] == "https://toko.example"
    print_table(shop, "admin@pasar.local", "pw")
    assert "mail:     sent by SMTP" in capsys.readouterr().out
