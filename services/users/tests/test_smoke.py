"""The main path end to end: register, log in, JWKS, internal lookup, notifications."""

from __future__ import annotations

import httpx
from users_support import UsersApi


async def test_register_login_and_internal_path(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    me = await users_client.get("/users/me", headers=account.headers)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == account.email

    jwks = await users_client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    (key,) = jwks.json()["keys"]
    assert "d" not in key

    service = await users_api.service_token()
    auth = {"Authorization": f"Bearer {service}"}
    internal = await users_client.get(f"/internal/users/{account.id}", headers=auth)
    assert internal.status_code == 200, internal.text
    assert internal.json() == {
        "id": account.id,
        "email": account.email,
        "full_name": "Siti Test",
        "role": "customer",
        "active": True,
        "email_verified": False,
    }
    event = {
        "event_id": "evt-1",
        "user_id": account.id,
        "type": "order.created",
        "order_id": "o-1",
        "status": "processing",
        "message": "Your order is being processed",
        "occurred_at": "2026-11-25T14:03:00Z",
    }
    for _ in range(2):
        posted = await users_client.post("/internal/notifications", json=event, headers=auth)
        assert posted.status_code == 202, posted.text
    inbox = await users_client.get("/users/me/notifications", headers=account.headers)
    assert inbox.status_code == 200
    assert inbox.json()["total"] == 1
