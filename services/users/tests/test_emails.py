"""One form of an email address everywhere: NFC, lower case, IDNA domains in Unicode;
compared byte for byte on every database; existing rows migrated."""

from __future__ import annotations

import asyncio
import unicodedata
import uuid
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import insert, select
from testdata import PASSWORD
from users_support import UsersApi

from pasar_kit.db import Database, utcnow
from pasar_kit.migrations import alembic_config, upgrade
from pasar_kit.testing import backend, fresh_database
from pasar_users.accounts import normalize_email
from pasar_users.app import MIGRATIONS
from pasar_users.tables import users

NFC = "jos\u00e9@example.com"
NFD = unicodedata.normalize("NFD", NFC)


def body(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD, "full_name": "José"}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Ayu.Putri@Example.COM ", "ayu.putri@example.com"),
        (NFD, NFC),
        ("B@XN--EXMPLE-CUA.COM", "b@ex\u00e4mple.com"),
        ("C@EX\u00c4MPLE.com", "c@ex\u00e4mple.com"),
        ("admin@pasar.local", "admin@pasar.local"),
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_normalize_email(given: str, stored: str) -> None:
    assert normalize_email(given) == stored
    assert normalize_email(stored) == stored  # idempotent


async def test_nfc_and_nfd_are_one_address(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    created = await users_client.post("/auth/register", json=body(NFC))
    assert created.status_code == 201 and created.json()["email"] == NFC
    again = await users_client.post("/auth/register", json=body(NFD))
    assert again.status_code == 409 and again.json()["code"] == "email_taken"
    for form in (NFC, NFD, NFD.upper()):
        assert (await users_api.login(form)).status_code == 200, ascii(form)


async def test_an_idna_domain_logs_in_in_either_spelling(users_api: UsersApi) -> None:
    await users_api.register("ayu@ex\u00e4mple.com")
    assert (await users_api.login("AYU@xn--exmple-cua.com")).status_code == 200
    assert (await users_api.login("ayu@EX\u00c4MPLE.COM")).status_code == 200


async def test_accented_and_plain_letters_are_different_addresses(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    # MariaDB's default collation calls these equal; a customer must not be refused.
    for email in (NFC, "jose@example.com", "strasse@example.com", "stra\u00dfe@example.com"):
        response = await users_client.post("/auth/register", json=body(email))
        assert response.status_code == 201, (ascii(email), response.text)
    assert (await users_api.login("jose@example.com", "wrong password")).status_code == 400


async def test_an_email_change_is_normalised_and_collides_in_any_form(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    await users_api.register(NFC)
    account = await users_api.account()
    response = await users_client.patch(
        "/users/me", headers=account.headers, json={"email": NFD, "current_password": PASSWORD}
    )
    assert response.status_code == 409


async def test_admin_search_matches_any_form(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admin = await users_api.account(admin=True)
    await users_api.register(NFC)
    found = await users_client.get(
        "/users", params={"q": unicodedata.normalize("NFD", "JOSÉ@")}, headers=admin.headers
    )
    assert [user["email"] for user in found.json()["items"]] == [NFC]


def test_the_migration_normalises_stored_emails(tmp_path: Path) -> None:
    """Rows written before 0002 (by hand, a script, an older version) are normalised;
    two that become one address keep one owner and leave the other as it was."""
    older, newer = "2026-01-01", "2026-02-01"
    rows = [
        ("upper", "Ayu@EXAMPLE.com", newer),
        ("idna", "b@xn--exmple-cua.com", newer),
        ("plain", "jose@example.com", newer),
    ]
    if backend() != "mariadb":  # its old collation never let both in
        rows += [("nfd-old", NFD, older), ("nfc-new", NFC, newer)]

    async def seed(url: str) -> None:
        db = Database(url)
        try:
            async with db.write() as conn:
                for name, email, day in rows:
                    created = utcnow().replace(
                        year=int(day[:4]), month=int(day[5:7]), day=int(day[8:])
                    )
                    await conn.execute(
                        insert(users).values(
                            id=name + "-" + uuid.uuid4().hex[:8],
                            email=email,
                            full_name=name,
                            password_hash="x",
                            role="customer",
                            active=True,
                            created_at=created,
                            updated_at=created,
                        )
                    )
        finally:
            await db.dispose()

    async def emails(url: str) -> dict[str, str]:
        db = Database(url)
        try:
            async with db.read() as conn:
                found = (await conn.execute(select(users.c.id, users.c.email))).all()
        finally:
            await db.dispose()
        return {row.id.rsplit("-", 1)[0]: row.email for row in found}

    with fresh_database("users_migration", tmp_path) as url:
        upgrade(url, MIGRATIONS, "0001")
        asyncio.run(seed(url))
        upgrade(url, MIGRATIONS)
        after = asyncio.run(emails(url))
        assert after["upper"] == "ayu@example.com"
        assert after["idna"] == "b@ex\u00e4mple.com"
        assert after["plain"] == "jose@example.com"
        if backend() != "mariadb":
            # The row already in the stored form keeps the address; the other is left.
            assert after["nfc-new"] == NFC
            assert after["nfd-old"] == NFD
        # And back down and up again, with the data in place.
        command.downgrade(alembic_config(url, MIGRATIONS), "0001")
        upgrade(url, MIGRATIONS)
        assert asyncio.run(emails(url)) == after
