"""Account mail as the routes write it: a verification email on registration, the
verification and reset links (driven by minting their tokens as the sender will), the
resend and reset throttles, the security notices and the mail preferences.

The sender is not part of these tests: they check what lands in ``deliveries`` and what
a link's token does."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from testdata import PASSWORD
from users_support import AppFactory, UsersApi

from pasar_kit.db import Database, utcnow
from pasar_users import email_tokens
from pasar_users.accounts import ensure_admin
from pasar_users.bootstrap import SEND_MAIL, Runtime
from pasar_users.email_tokens import Purpose
from pasar_users.tables import AnyRow, attempts, deliveries, users
from pasar_users.tables import email_tokens as link_tokens

VERIFY_TTL = timedelta(hours=48)
RESET_TTL = timedelta(minutes=30)
NEW_PASSWORD = "a brand new secret"


class MovableClock:
    """The real time, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def move(self, delta: timedelta) -> None:
        self.offset += delta


async def mail(db: Database, **where: Any) -> list[AnyRow]:
    """The deliveries matching ``where`` (column = value), oldest first."""
    query = select(deliveries).order_by(deliveries.c.created_at, deliveries.c.id)
    for name, value in where.items():
        query = query.where(deliveries.c[name] == value)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def mint(
    db: Database,
    user_id: str,
    email: str,
    purpose: Purpose,
    *,
    now: datetime | None = None,
    ttl: timedelta | None = None,
) -> str:
    """A link's token, minted as the sender mints it when it sends the mail."""
    default_ttl = VERIFY_TTL if purpose == "verify_email" else RESET_TTL
    async with db.write() as conn:
        return await email_tokens.issue(
            conn,
            user_id=user_id,
            purpose=purpose,
            email=email,
            now=now or utcnow(),
            ttl=ttl or default_ttl,
        )


async def verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/verify-email", json={"token": token})


async def confirm(
    client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_token"
    assert body["detail"] == "This link has expired or was already used; ask for a new one."


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/users/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- registration and verification -------------------------------------------------


async def test_registration_queues_one_verification_email_in_the_chosen_language(
    users_client: httpx.AsyncClient, users_db: Database
) -> None:
    response = await users_client.post(
        "/auth/register",
        json={
            "email": "Ayu@Example.com",
            "password": PASSWORD,
            "full_name": "Ayu",
            "language": "en",
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["email_verified"] is False
    assert user["order_emails"] is True
    assert user["language"] == "en"
    (sent,) = await mail(users_db)
    assert (sent.template, sent.recipient, sent.user_id, sent.language, sent.state) == (
        "verify_email",
        "ayu@example.com",
        user["id"],
        "en",
        "pending",
    )
    # The outbox never holds a live link: the sender mints it when it sends.
    assert sent.context == "{}"
    async with users_db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(link_tokens)) == 0


async def test_registration_defaults_to_bahasa_indonesia_and_refuses_other_languages(
    users_client: httpx.AsyncClient, users_db: Database
) -> None:
    body = {"email": "budi@example.com", "password": PASSWORD, "full_name": "Budi"}
    refused = await users_client.post("/auth/register", json={**body, "language": "fr"})
    assert refused.status_code == 422
    created = await users_client.post("/auth/register", json=body)
    assert created.json()["language"] == "id"
    (sent,) = await mail(users_db)
    assert sent.language == "id"


async def test_a_verification_link_works_once(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    token = await mint(users_db, account.id, account.email, "verify_email")
    assert (await me(users_client, account.headers))["email_verified"] is False
    assert (await verify(users_client, token)).status_code == 204
    assert (await me(users_client, account.headers))["email_verified"] is True
    assert_invalid_token(await verify(users_client, token))


@pytest.mark.parametrize("token", ["", "x" * 101])
async def test_a_token_of_no_possible_length_is_a_malformed_request(
    users_client: httpx.AsyncClient, token: str
) -> None:
    assert (await verify(users_client, token)).status_code == 422
    assert (await confirm(users_client, token)).status_code == 422


async def test_an_unknown_or_other_purpose_token_is_invalid(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    reset_token = await mint(users_db, account.id, account.email, "password_reset")
    assert_invalid_token(await verify(users_client, "x" * 43))
    assert_invalid_token(await verify(users_client, reset_token))
    assert (await me(users_client, account.headers))["email_verified"] is False


async def test_a_verification_link_expires(users_app_with: AppFactory) -> None:
    clock = MovableClock()
    async with users_app_with(clock=clock) as app:
        api = UsersApi(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t"), app
        )
        user = await api.register()
        db: Database = app.state.db
        late = await mint(db, user["id"], user["email"], "verify_email", now=clock())
        clock.move(VERIFY_TTL + timedelta(seconds=1))
        assert_invalid_token(await verify(api.client, late))
        in_time = await mint(db, user["id"], user["email"], "verify_email", now=clock())
        clock.move(VERIFY_TTL - timedelta(seconds=5))
        assert (await verify(api.client, in_time)).status_code == 204
        await api.client.aclose()


async def test_a_newer_verification_link_kills_the_older(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    older = await mint(users_db, user["id"], user["email"], "verify_email")
    newer = await mint(users_db, user["id"], user["email"], "verify_email")
    assert_invalid_token(await verify(users_client, older))
    assert (await verify(users_client, newer)).status_code == 204


async def test_a_verification_link_dies_when_the_email_changes(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account("old@example.com")
    token = await mint(users_db, account.id, account.email, "verify_email")
    changed = await users_client.patch(
        "/users/me",
        headers=account.headers,
        json={"email": "new@example.com", "current_password": PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert_invalid_token(await verify(users_client, token))
    assert (await me(users_client, account.headers))["email_verified"] is False


async def test_an_email_change_unverifies_tells_the_old_address_and_verifies_the_new(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account("lama@example.com")
    await users_client.patch("/users/me", headers=account.headers, json={"language": "en"})
    token = await mint(users_db, account.id, account.email, "verify_email")
    assert (await verify(users_client, token)).status_code == 204
    before = len(await mail(users_db))
    changed = await users_client.patch(
        "/users/me",
        headers=account.headers,
        json={"email": "Baru@Example.com", "current_password": PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email_verified"] is False
    new = await mail(users_db)
    assert len(new) == before + 2
    (notice,) = await mail(users_db, template="email_changed")
    assert (notice.recipient, notice.user_id, notice.language) == (
        "lama@example.com",
        account.id,
        "en",
    )
    assert notice.context == '{"new_email":"baru@example.com"}'
    latest = (await mail(users_db, template="verify_email"))[-1]
    assert (latest.recipient, latest.user_id, latest.state) == (
        "baru@example.com",
        account.id,
        "pending",
    )
    # A link for the new address verifies it.
    fresh = await mint(users_db, account.id, "baru@example.com", "verify_email")
    assert (await verify(users_client, fresh)).status_code == 204
    assert (await me(users_client, account.headers))["email_verified"] is True


async def test_an_unchanged_email_sends_nothing(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    before = len(await mail(users_db))
    same = await users_client.patch(
        "/users/me", headers=account.headers, json={"email": account.email.upper()}
    )
    assert same.status_code == 200, same.text
    assert len(await mail(users_db)) == before


async def test_a_deactivated_accounts_link_is_invalid(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    token = await mint(users_db, user["id"], user["email"], "verify_email")
    async with users_db.write() as conn:
        await conn.execute(update(users).where(users.c.id == user["id"]).values(active=False))
    assert_invalid_token(await verify(users_client, token))


async def test_the_bootstrap_admin_is_verified_and_gets_no_mail(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    runtime: Runtime = users_app.state.runtime
    await ensure_admin(
        db=users_db,
        email="boss@example.com",
        password=PASSWORD,
        passwords=runtime.passwords,
        clock=utcnow,
    )
    assert await mail(users_db) == []
    login = (await users_api.login("boss@example.com")).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    assert (await me(users_client, headers))["email_verified"] is True
    # A customer promoted by it is verified too: whoever runs it owns the account.
    customer = await users_api.register()
    await ensure_admin(
        db=users_db,
        email=customer["email"],
        password=PASSWORD,
        passwords=runtime.passwords,
        clock=utcnow,
    )
    listed = await users_client.get("/users", headers=headers, params={"q": customer["email"]})
    assert listed.json()["items"][0]["email_verified"] is True


async def test_routes_that_queue_mail_wake_the_sender_after_committing(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_db: Database
) -> None:
    """The sender is another engineer's job; a stand-in under its name records what it
    finds in the outbox each time it is woken (its own tick is half an hour away)."""
    seen: list[int] = []

    async def sender() -> int:
        seen.append(len(await mail(users_db)))
        return 0

    runtime: Runtime = users_app.state.runtime
    runtime.jobs.add(SEND_MAIL, sender, 3600)
    runtime.jobs.start()

    async def woken(times: int) -> None:
        for _ in range(200):
            if len(seen) >= times:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the sender was woken {len(seen)} times, not {times}")

    user = await users_client.post(
        "/auth/register", json={"email": "wake@example.com", "password": PASSWORD, "full_name": "W"}
    )
    assert user.status_code == 201
    await woken(1)
    reset = await users_client.post("/auth/password-reset", json={"email": "wake@example.com"})
    assert reset.status_code == 202
    await woken(2)
    assert seen == [1, 2]  # each time the new message was already committed


# --- resend ------------------------------------------------------------------------


async def test_resend_queues_another_verification_email_and_is_throttled(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database, age_attempts: Any
) -> None:
    account = await users_api.account()
    path, headers = "/users/me/email-verification", account.headers
    # The registration's email counts: a resend right after it waits a minute.
    early = await users_client.post(path, headers=headers)
    assert early.status_code == 429, early.text
    assert early.json()["code"] == "too_many_verification_emails"
    assert 1 <= int(early.headers["Retry-After"]) <= 60
    for _ in range(4):
        await age_attempts(users_db, 61)
        sent = await users_client.post(path, headers=headers)
        assert sent.status_code == 202, sent.text
    assert len(await mail(users_db, template="verify_email", user_id=account.id)) == 5
    # Five a day, however patient: the next waits for the first to be a day old.
    await age_attempts(users_db, 61)
    daily = await users_client.post(path, headers=headers)
    assert daily.status_code == 429
    assert int(daily.headers["Retry-After"]) > 3600 * 23
    await age_attempts(users_db, 24 * 3600)
    assert (await users_client.post(path, headers=headers)).status_code == 202
    assert len(await mail(users_db, template="verify_email", user_id=account.id)) == 6


async def test_resend_for_a_verified_address_is_a_conflict(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    token = await mint(users_db, account.id, account.email, "verify_email")
    assert (await verify(users_client, token)).status_code == 204
    response = await users_client.post("/users/me/email-verification", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "email_already_verified"
    assert (await users_client.post("/users/me/email-verification")).status_code == 401


# --- password reset ------------------------------------------------------------------


def comparable(response: httpx.Response) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Everything a client sees but the date and the request id."""
    varying = {"date", "x-request-id"}
    headers = tuple(sorted((k, v) for k, v in response.headers.items() if k.lower() not in varying))
    return response.status_code, headers, response.content


async def test_a_reset_request_for_an_unknown_email_is_indistinguishable(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    known = await users_api.register("known@example.com")
    before = len(await mail(users_db))
    known_reply = await users_client.post(
        "/auth/password-reset", json={"email": "Known@Example.com"}
    )
    unknown_reply = await users_client.post(
        "/auth/password-reset", json={"email": "nobody@example.com"}
    )
    assert known_reply.status_code == 202
    assert comparable(known_reply) == comparable(unknown_reply)
    assert set(known_reply.json()) == {"detail"}
    rows = await mail(users_db, template="password_reset")
    assert len(await mail(users_db)) == before + 2
    assert [(r.recipient, r.user_id, r.state) for r in rows] == [
        ("known@example.com", None, "pending"),
        ("nobody@example.com", None, "pending"),
    ]
    # No link exists until the sender mints one for a real account.
    async with users_db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(link_tokens)) == 0
    assert known["email_verified"] is False


async def test_a_malformed_email_is_a_validation_error(users_client: httpx.AsyncClient) -> None:
    for body in ({"email": "not an email"}, {}, {"email": "a@b.c" + "x" * 300}):
        assert (await users_client.post("/auth/password-reset", json=body)).status_code == 422


async def test_reset_requests_per_email_are_capped_silently(
    users_client: httpx.AsyncClient, users_db: Database, age_attempts: Any
) -> None:
    replies = [
        await users_client.post("/auth/password-reset", json={"email": "flood@example.com"})
        for _ in range(7)
    ]
    assert len({comparable(r) for r in replies}) == 1  # the seventh answers like the first
    assert replies[0].status_code == 202
    assert len(await mail(users_db, recipient="flood@example.com")) == 5
    # Another address still gets its mail, and the flooded one again an hour later.
    await users_client.post("/auth/password-reset", json={"email": "other@example.com"})
    assert len(await mail(users_db, recipient="other@example.com")) == 1
    await age_attempts(users_db, 3601)
    await users_client.post("/auth/password-reset", json={"email": "flood@example.com"})
    assert len(await mail(users_db, recipient="flood@example.com")) == 6


async def test_reset_requests_per_client_address_are_refused_with_retry_after(
    users_app_with: AppFactory, client_from: Any
) -> None:
    async with (
        users_app_with(password_resets_per_address=3) as app,
        client_from(app, "203.0.113.7") as client,
        client_from(app, "203.0.113.8") as neighbour,
    ):
        for n in range(3):
            email = {"email": f"person{n}@example.com"}
            assert (await client.post("/auth/password-reset", json=email)).status_code == 202
        refused = await client.post("/auth/password-reset", json={"email": "more@example.com"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_password_resets"
        assert 3500 < int(refused.headers["Retry-After"]) <= 3600
        ok = await neighbour.post("/auth/password-reset", json={"email": "more@example.com"})
        assert ok.status_code == 202
        assert len(await mail(app.state.db, template="password_reset")) == 4


async def test_a_reset_link_sets_the_password_once_and_revokes_every_token(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    second_device = (await users_api.login(account.email)).json()["refresh_token"]
    token = await mint(users_db, account.id, account.email, "password_reset")
    assert (await confirm(users_client, token)).status_code == 204
    assert (await users_api.login(account.email)).status_code == 400
    new_login = await users_api.login(account.email, NEW_PASSWORD)
    assert new_login.status_code == 200
    for refresh in (account.refresh_token, second_device):
        refused = await users_client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
    # The access token from before is revoked; one issued after works.
    assert (await users_client.get("/users/me", headers=account.headers)).status_code == 401
    fresh = {"Authorization": f"Bearer {new_login.json()['access_token']}"}
    assert (await me(users_client, fresh))["email_verified"] is True  # they proved the mailbox
    (notice,) = await mail(users_db, template="password_changed")
    assert (notice.recipient, notice.user_id, notice.state) == (
        account.email,
        account.id,
        "pending",
    )
    assert_invalid_token(await confirm(users_client, token, "yet another password"))
    assert (await users_api.login(account.email, NEW_PASSWORD)).status_code == 200


async def test_a_reset_link_expires(users_app_with: AppFactory) -> None:
    clock = MovableClock()
    async with users_app_with(clock=clock) as app:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        api = UsersApi(client, app)
        user = await api.register()
        db: Database = app.state.db
        token = await mint(db, user["id"], user["email"], "password_reset", now=clock())
        clock.move(RESET_TTL + timedelta(seconds=1))
        assert_invalid_token(await confirm(client, token))
        in_time = await mint(db, user["id"], user["email"], "password_reset", now=clock())
        clock.move(RESET_TTL - timedelta(seconds=5))
        assert (await confirm(client, in_time)).status_code == 204
        await client.aclose()


async def test_a_newer_reset_link_kills_the_older(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    older = await mint(users_db, user["id"], user["email"], "password_reset")
    newer = await mint(users_db, user["id"], user["email"], "password_reset")
    assert_invalid_token(await confirm(users_client, older))
    assert (await users_api.login(user["email"], NEW_PASSWORD)).status_code == 400
    assert (await confirm(users_client, newer)).status_code == 204


async def test_a_weak_password_is_refused_before_the_token_is_spent(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    token = await mint(users_db, user["id"], user["email"], "password_reset")
    for weak in ("short", "x" * 1025):
        assert (await confirm(users_client, token, weak)).status_code == 422
    assert (await confirm(users_client, token)).status_code == 204


async def test_a_reset_link_for_a_deactivated_account_or_an_old_address_is_invalid(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    inactive = await users_api.register()
    token = await mint(users_db, inactive["id"], inactive["email"], "password_reset")
    async with users_db.write() as conn:
        await conn.execute(update(users).where(users.c.id == inactive["id"]).values(active=False))
    assert_invalid_token(await confirm(users_client, token))
    moved = await users_api.account("before@example.com")
    old_link = await mint(users_db, moved.id, moved.email, "password_reset")
    changed = await users_client.patch(
        "/users/me",
        headers=moved.headers,
        json={"email": "after@example.com", "current_password": PASSWORD},
    )
    assert changed.status_code == 200
    assert_invalid_token(await confirm(users_client, old_link))
    assert (await users_api.login("after@example.com")).status_code == 200


async def test_concurrent_confirmations_with_one_token_have_one_winner(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    token = await mint(users_db, user["id"], user["email"], "password_reset")
    passwords = [f"racing password {n}" for n in range(6)]
    responses = await asyncio.gather(*(confirm(users_client, token, p) for p in passwords))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {204: 1, 400: 5}, [r.text for r in responses]
    (winner,) = [p for p, r in zip(passwords, responses, strict=True) if r.status_code == 204]
    for password in passwords:
        expected = 200 if password == winner else 400
        assert (await users_api.login(user["email"], password)).status_code == expected
    assert len(await mail(users_db, template="password_changed")) == 1


async def test_concurrent_clicks_on_one_verification_link_have_one_winner(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    token = await mint(users_db, user["id"], user["email"], "verify_email")
    responses = await asyncio.gather(*(verify(users_client, token) for _ in range(6)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {204: 1, 400: 5}, [r.text for r in responses]


# --- security notices and preferences ------------------------------------------------


async def test_changing_the_password_queues_a_notice(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    changed = await users_client.put(
        "/users/me/password",
        headers=account.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    (notice,) = await mail(users_db, template="password_changed")
    assert (notice.recipient, notice.user_id, notice.language) == (account.email, account.id, "id")
    login = await users_api.login(account.email, NEW_PASSWORD)
    wrong = await users_client.put(
        "/users/me/password",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        json={"current_password": "not the password", "new_password": "whatever else"},
    )
    assert wrong.status_code == 403
    assert len(await mail(users_db, template="password_changed")) == 1


async def test_mail_preferences_in_the_profile(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    profile = await me(users_client, account.headers)
    assert (profile["order_emails"], profile["language"]) == (True, "id")
    changed = await users_client.patch(
        "/users/me", headers=account.headers, json={"order_emails": False, "language": "en"}
    )
    assert changed.status_code == 200, changed.text
    profile = await me(users_client, account.headers)
    assert (profile["order_emails"], profile["language"]) == (False, "en")
    async with users_db.read() as conn:
        row = (
            await conn.execute(
                select(users.c.order_emails, users.c.language).where(users.c.id == account.id)
            )
        ).one()
    assert (row.order_emails, row.language) == (False, "en")
    for bad in ({"order_emails": None}, {"language": None}, {"language": "de"}):
        refused = await users_client.patch("/users/me", headers=account.headers, json=bad)
        assert refused.status_code == 422, bad
    assert await mail(users_db, template="email_changed") == []


async def test_internal_user_says_whether_the_email_is_verified(
    users_client: httpx.AsyncClient, users_api: UsersApi, users_db: Database
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token(scope='users:read')}"}
    path = f"/internal/users/{account.id}"
    assert (await users_client.get(path, headers=auth)).json()["email_verified"] is False
    token = await mint(users_db, account.id, account.email, "verify_email")
    assert (await verify(users_client, token)).status_code == 204
    assert (await users_client.get(path, headers=auth)).json()["email_verified"] is True


async def test_the_purge_forgets_expired_links_and_old_resend_counts(
    users_app: FastAPI, users_api: UsersApi, users_db: Database
) -> None:
    user = await users_api.register()
    long_ago = utcnow() - timedelta(days=3)
    await mint(users_db, user["id"], user["email"], "verify_email", now=long_ago)
    live = await mint(users_db, user["id"], user["email"], "password_reset")
    async with users_db.write() as conn:
        await conn.execute(update(attempts).values(at=utcnow() - timedelta(hours=23)))
    runtime: Runtime = users_app.state.runtime
    await runtime._purge()
    async with users_db.read() as conn:
        left = (await conn.execute(select(link_tokens.c.token_hash))).all()
        counted = await conn.scalar(select(func.count()).select_from(attempts))
    assert [row.token_hash for row in left] == [email_tokens.hash_token(live)]
    assert counted == 1  # the registration's verification email still counts for a day
