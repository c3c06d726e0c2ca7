"""GET /admin/deliveries: the delivery ledger, its filters, paging and who may read it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from users_support import UsersApi

from pasar_kit.db import Database, utcnow
from pasar_users.mail import outbox
from pasar_users.tables import deliveries


async def _fill(db: Database, user_id: str) -> str:
    """Five messages, one a minute apart; returns the id of the newest."""
    start = utcnow() - timedelta(minutes=10)
    async with db.write() as conn:
        # Only these: not the verification mail the admin's own registration queued.
        await conn.execute(deliveries.delete())
        for n, (template, recipient) in enumerate(
            [
                ("password_reset", "nobody@example.com"),
                ("verify_email", "ayu@example.com"),
                ("order_status", "ayu@example.com"),
                ("order_status", "ayu@example.com"),
                ("admin_new_order", "boss@example.com"),
            ]
        ):
            await outbox.enqueue(
                conn,
                template=template,  # type: ignore[arg-type]
                recipient=recipient,
                language="id",
                now=start + timedelta(minutes=n),
                context={"secret": "never shown"},
                user_id=None if template == "password_reset" else user_id,
                order_id="ord-1" if "order" in template else None,
            )
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.template == "verify_email")
            .values(state="sent", attempts=2, last_error="451 try later")
        )
        newest = await conn.scalar(
            deliveries.select()
            .with_only_columns(deliveries.c.id)
            .where(deliveries.c.template == "admin_new_order")
        )
    assert newest is not None
    return str(newest)


async def test_the_ledger_lists_newest_first_and_filters(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    admin = await users_api.account(admin=True)
    newest = await _fill(users_db, admin.id)

    async def page(**params: str | int) -> dict[str, object]:
        response = await users_client.get("/admin/deliveries", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    everything = await page()
    items = everything["items"]
    assert isinstance(items, list) and everything["total"] == 5
    assert items[0]["id"] == newest and items[-1]["template"] == "password_reset"
    assert set(items[0]) == {
        "id", "channel", "recipient", "user_id", "order_id", "template", "language", "state",
        "attempts", "last_error", "created_at", "updated_at", "sent_at", "next_attempt_at",
    }  # fmt: skip
    assert "never shown" not in str(everything)
    assert (await page(state="sent"))["total"] == 1
    sent = (await page(state="sent"))["items"]
    assert isinstance(sent, list) and sent[0]["attempts"] == 2
    assert sent[0]["last_error"] == "451 try later"
    assert (await page(template="order_status"))["total"] == 2
    assert (await page(recipient="  AYU@Example.com "))["total"] == 3
    assert (await page(recipient="ayu@example.com", template="order_status"))["total"] == 2
    assert (await page(user_id=admin.id))["total"] == 4
    assert (await page(order_id="ord-1"))["total"] == 3
    assert (await page(order_id="nothing"))["total"] == 0
    second = await page(limit=2, offset=2)
    assert second["total"] == 5 and [i["template"] for i in second["items"]] == [  # type: ignore[attr-defined]
        "order_status",
        "verify_email",
    ]

    one = await users_client.get(f"/admin/deliveries/{newest}", headers=admin.headers)
    assert one.status_code == 200 and one.json()["template"] == "admin_new_order"
    for missing in (str(uuid.uuid4()), "not an id!"):
        response = await users_client.get(f"/admin/deliveries/{missing}", headers=admin.headers)
        assert response.status_code == 404 and response.json()["code"] == "delivery_not_found"


@pytest.mark.parametrize(
    "params",
    [
        {"state": "lost"},
        {"template": "spam"},
        {"user_id": "x" * 37},
        {"order_id": "a b"},
        {"recipient": "x" * 300},
        {"limit": 0},
        {"offset": -1},
    ],
)
async def test_invalid_filters_are_problem_details(
    users_client: httpx.AsyncClient, users_api: UsersApi, params: dict[str, str | int]
) -> None:
    admin = await users_api.account(admin=True)
    response = await users_client.get("/admin/deliveries", params=params, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_only_admins_read_the_ledger(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    customer = await users_api.account()
    for path in ("/admin/deliveries", f"/admin/deliveries/{uuid.uuid4()}"):
        assert (await users_client.get(path)).status_code == 401
        assert (await users_client.get(path, headers=customer.headers)).status_code == 403
        service = await users_api.service_token()
        headers = {"Authorization": f"Bearer {service}"}
        assert (await users_client.get(path, headers=headers)).status_code == 403
