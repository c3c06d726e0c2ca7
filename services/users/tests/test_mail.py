"""The mail sender against a real SMTP server (aiosmtpd) and the file transport: what is
sent, dropped, retried and failed, and what the ledger says about it."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mailsink import MailSink
from sqlalchemy import select, update
from users_support import UsersApi, users_test_settings

from pasar_kit.db import Database, utcnow
from pasar_kit.testing import clear_tables, lifespan_of
from pasar_users import email_tokens
from pasar_users.app import create_app
from pasar_users.bootstrap import Runtime
from pasar_users.mail import outbox
from pasar_users.mail.outbox import Template
from pasar_users.mail.transports import (
    DeliveryFailure,
    Outgoing,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
)
from pasar_users.tables import deliveries, metadata, users


class MovableClock:
    """The service's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    with MailSink() as sink:
        yield sink


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def mail_app(
    users_database_url: str, mail_sink: MailSink, clock: MovableClock
) -> AsyncIterator[FastAPI]:
    app = create_app(smtp_settings(users_database_url, mail_sink), clock=clock)
    try:
        async with lifespan_of(app):
            yield app
    finally:
        await clear_tables(users_database_url, metadata)


def smtp_settings(url: str, sink: MailSink, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "mail_transport": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": sink.port,
        "smtp_security": "none",
        "smtp_timeout_seconds": 5,
        "mail_retry_base_seconds": 5,
        "mail_retry_max_seconds": 60,
        "mail_max_attempts": 4,
        **overrides,
    }
    return users_test_settings(url, **values)


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def add_user(
    db: Database, email: str, *, language: str = "id", verified: bool = True, **values: Any
) -> str:
    user_id = str(uuid.uuid4())
    now = utcnow()
    async with db.write() as conn:
        await conn.execute(
            users.insert().values(
                id=user_id,
                email=email,
                full_name="Siti Rahma",
                password_hash="x",
                role="customer",
                active=True,
                created_at=now,
                updated_at=now,
                email_verified_at=now if verified else None,
                language=language,
                **values,
            )
        )
    return user_id


async def enqueue(db: Database, template: Template, recipient: str, **values: Any) -> None:
    async with db.write() as conn:
        values.setdefault("language", "id")
        assert await outbox.enqueue(
            conn,
            template=template,
            recipient=recipient,
            now=utcnow() - timedelta(seconds=1),
            **values,
        )


async def ledger(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list(
            (await conn.execute(select(deliveries).order_by(deliveries.c.created_at))).all()
        )


ORDER_ID = "0a1b2c3d-1111-4222-8333-444455556666"
ORDER = {
    "lines": [
        {
            "product_id": "p-1",
            "name": "Kopi Toraja 250 g",
            "quantity": 2,
            "unit_price": 46000,
            "line_total": 92000,
        },
        {
            "product_id": "p-2",
            "name": "Teh <Melati>",
            "quantity": 1,
            "unit_price": 15500,
            "line_total": 15500,
        },
    ],
    "total": 107500,
    "note": "JNE resi 0123456789",
}


async def test_order_mail_reaches_the_smtp_server_in_the_customers_language(
    mail_app: FastAPI, mail_sink: MailSink
) -> None:
    runtime = runtime_of(mail_app)
    user_id = await add_user(runtime.db, "siti@example.com", language="id")
    context = {"type": "order.status_changed", "order_id": ORDER_ID, "status": "shipped"}
    await enqueue(
        runtime.db,
        "order_status",
        "siti@example.com",
        user_id=user_id,
        order_id=ORDER_ID,
        context={**context, "order": ORDER},
    )
    await enqueue(
        runtime.db,
        "order_status",
        "siti@example.com",
        language="en",
        user_id=user_id,
        order_id=ORDER_ID,
        context={**context, "order": ORDER},
    )
    batch = await runtime.sender.send_due()
    assert (batch.claimed, batch.sent) == (2, 2)
    received = mail_sink.to("siti@example.com")
    subjects = sorted(str(m["Subject"]) for m in received)
    assert subjects == ["Order #0A1B2C3D has been shipped", "Pesanan #0A1B2C3D telah dikirim"]
    indonesian = next(m for m in received if m["Content-Language"] == "id")
    text = MailSink.text(indonesian)
    assert "Halo Siti Rahma," in text
    assert "Resi pengiriman: JNE resi 0123456789" in text
    assert "2 x Kopi Toraja 250 g @ Rp\u00a046.000 = Rp\u00a092.000" in text
    assert "Total: Rp\u00a0107.500" in text
    assert f"http://127.0.0.1:8000/orders/{ORDER_ID}" in text
    html = MailSink.html(indonesian)
    assert "Teh &lt;Melati&gt;" in html and "<Melati>" not in html
    english = MailSink.text(next(m for m in received if m["Content-Language"] == "en"))
    assert "Total: Rp\u00a0107,500" in english and "Tracking: JNE resi" in english
    rows = await ledger(runtime.db)
    assert [(r.state, r.attempts) for r in rows] == [("sent", 1), ("sent", 1)]
    assert {r.message_id for r in rows} == {str(m["Message-ID"]) for m in received}
    # Nothing left: a second run claims nothing.
    assert (await runtime.sender.send_due()).claimed == 0


async def test_a_reset_for_an_unknown_address_is_dropped_and_a_known_one_mints_a_link(
    mail_app: FastAPI, mail_sink: MailSink, clock: MovableClock
) -> None:
    runtime = runtime_of(mail_app)
    user_id = await add_user(runtime.db, "ayu@example.com", language="en")
    await enqueue(runtime.db, "password_reset", "nobody@example.com")
    await enqueue(runtime.db, "password_reset", "ayu@example.com")
    batch = await runtime.sender.send_due()
    assert (batch.sent, batch.dropped) == (1, 1)
    rows = {r.recipient: r for r in await ledger(runtime.db)}
    assert rows["nobody@example.com"].state == "dropped"
    assert rows["nobody@example.com"].last_error == "no account with this email"
    assert rows["ayu@example.com"].state == "sent"
    (message,) = mail_sink.messages
    assert message["To"] == "ayu@example.com"
    assert message["Subject"] == "Reset your pasar password"  # the account's language
    text = MailSink.text(message)
    prefix = "http://127.0.0.1:8000/reset-password?token="
    token = next(word for word in text.split() if word.startswith(prefix))[len(prefix) :]
    # The outbox never held the token; the link works once.
    assert token not in rows["ayu@example.com"].context
    async with runtime.db.write() as conn:
        redeemed = await email_tokens.redeem(
            conn, token=token, purpose="password_reset", now=clock()
        )
        assert redeemed is not None and redeemed.user_id == user_id
        again = await email_tokens.redeem(conn, token=token, purpose="password_reset", now=clock())
        assert again is None


async def test_a_verification_for_a_verified_or_changed_address_is_dropped(
    mail_app: FastAPI, mail_sink: MailSink
) -> None:
    runtime = runtime_of(mail_app)
    verified = await add_user(runtime.db, "done@example.com")
    fresh = await add_user(runtime.db, "new@example.com", verified=False)
    await enqueue(runtime.db, "verify_email", "done@example.com", user_id=verified)
    await enqueue(runtime.db, "verify_email", "old@example.com", user_id=fresh)
    await enqueue(runtime.db, "verify_email", "new@example.com", user_id=fresh)
    batch = await runtime.sender.send_due()
    assert (batch.sent, batch.dropped) == (1, 2)
    reasons = {r.recipient: (r.state, r.last_error) for r in await ledger(runtime.db)}
    assert reasons["done@example.com"] == ("dropped", "the email is already verified")
    assert reasons["old@example.com"] == ("dropped", "the account's email changed since")
    (message,) = mail_sink.messages
    assert "http://127.0.0.1:8000/verify-email?token=" in MailSink.text(message)
    assert message["Subject"] == "Konfirmasi alamat email Anda untuk pasar"


async def test_the_server_down_for_a_while_then_back_delivers_everything_once(
    mail_app: FastAPI, mail_sink: MailSink, clock: MovableClock
) -> None:
    runtime = runtime_of(mail_app)
    user_id = await add_user(runtime.db, "tono@example.com")
    for n in range(5):
        await enqueue(
            runtime.db,
            "password_changed",
            "tono@example.com",
            user_id=user_id,
            dedupe_key=f"test:{n}",
        )
    mail_sink.stop()
    first = await runtime.sender.send_due()
    assert (first.claimed, first.retrying, first.sent) == (5, 5, 0)
    assert await runtime.sender.tick() == 0  # nothing due: no hot loop
    rows = await ledger(runtime.db)
    assert {(r.state, r.attempts) for r in rows} == {("pending", 1)}
    assert all(r.last_error and r.next_attempt_at > clock() for r in rows)
    message_ids = {r.message_id for r in rows}
    clock.move(10)  # past the first backoff (5 s, jitter at most 20 %)
    assert (await runtime.sender.send_due()).retrying == 5
    mail_sink.start()
    assert (await runtime.sender.send_due()).claimed == 0  # still backing off
    clock.move(30)
    assert (await runtime.sender.send_due()).sent == 5
    assert sorted(mail_sink.message_ids()) == sorted(message_ids)  # the same messages, once
    rows = await ledger(runtime.db)
    assert {(r.state, r.attempts) for r in rows} == {("sent", 3)}
    assert all("Connect" in r.last_error or "refused" in r.last_error for r in rows)
    clock.move(3600)
    assert (await runtime.sender.send_due()).claimed == 0
    assert len(mail_sink.messages) == 5


async def test_a_permanent_refusal_fails_at_once_and_a_temporary_one_after_the_limit(
    mail_app: FastAPI, mail_sink: MailSink, clock: MovableClock
) -> None:
    runtime = runtime_of(mail_app)
    user_id = await add_user(runtime.db, "wati@example.com")
    await enqueue(runtime.db, "password_changed", "wati@example.com", user_id=user_id)
    mail_sink.refuse = "550 5.1.1 No such mailbox"
    batch = await runtime.sender.send_due()
    assert (batch.failed, batch.retrying) == (1, 0)
    (row,) = await ledger(runtime.db)
    assert (row.state, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("550")
    clock.move(3600)
    assert (await runtime.sender.send_due()).claimed == 0  # never tried again

    await enqueue(runtime.db, "email_changed", "wati@example.com", user_id=user_id)
    mail_sink.refuse = "451 4.3.0 Try again later"
    for attempt in range(1, 5):
        batch = await runtime.sender.send_due()
        assert batch.claimed == 1, attempt
        clock.move(120)
    rows = {r.template: r for r in await ledger(runtime.db)}
    assert (rows["email_changed"].state, rows["email_changed"].attempts) == ("failed", 4)
    assert rows["email_changed"].last_error.startswith("451")
    assert mail_sink.messages == []


async def test_the_file_transport_writes_a_readable_eml_and_logs_the_link(
    users_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = users_test_settings(users_database_url, mail_dir=str(tmp_path / "mail"))
    app = create_app(settings)
    try:
        async with lifespan_of(app):
            runtime = runtime_of(app)
            await add_user(runtime.db, "rina@example.com", verified=False, language="id")
            await enqueue(runtime.db, "password_reset", "rina@example.com")
            with caplog.at_level(logging.INFO, logger="pasar.users.mail"):
                assert (await runtime.sender.send_due()).sent == 1
    finally:
        await clear_tables(users_database_url, metadata)
    (file,) = (tmp_path / "mail").iterdir()
    assert file.suffix == ".eml"
    raw = file.read_bytes()
    assert b"http://127.0.0.1:8000/reset-password?token=" in raw  # readable, not encoded
    message = message_from_bytes(raw, policy=policy.default)
    assert message["To"] == "rina@example.com"
    assert message["Subject"] == "Atur ulang kata sandi pasar Anda"
    (line,) = [r.getMessage() for r in caplog.records if "rina@example.com" in r.getMessage()]
    assert "Atur ulang kata sandi pasar Anda" in line
    assert "http://127.0.0.1:8000/reset-password?token=" in line


async def test_two_senders_drain_one_outbox_without_duplicates(
    users_database_url: str, mail_sink: MailSink
) -> None:
    @asynccontextmanager
    async def replica() -> AsyncIterator[Runtime]:
        app = create_app(smtp_settings(users_database_url, mail_sink, mail_batch_size=20))
        async with lifespan_of(app):
            yield runtime_of(app)

    try:
        async with replica() as one, replica() as two:
            user_id = await add_user(one.db, "banyak@example.com")
            now = datetime.now(UTC) - timedelta(seconds=1)
            async with one.db.write() as conn:
                for n in range(200):
                    await outbox.enqueue(
                        conn,
                        template="password_changed",
                        recipient="banyak@example.com",
                        language="id",
                        now=now,
                        user_id=user_id,
                        dedupe_key=f"bulk:{n}",
                    )

            async def drain(runtime: Runtime) -> int:
                sent = 0
                while (batch := await runtime.sender.send_due()).claimed:
                    sent += batch.sent
                return sent

            counts = await asyncio.gather(drain(one), drain(two), drain(one), drain(two))
            assert sum(counts) == 200
            ids = mail_sink.message_ids()
            assert len(ids) == 200 and len(set(ids)) == 200
            async with one.db.read() as conn:
                states = set(await conn.scalars(select(deliveries.c.state)))
            assert states == {"sent"}
    finally:
        await clear_tables(users_database_url, metadata)


async def test_settled_deliveries_are_purged_after_the_retention(
    mail_app: FastAPI, mail_sink: MailSink
) -> None:
    runtime = runtime_of(mail_app)
    user_id = await add_user(runtime.db, "lama@example.com")
    await enqueue(runtime.db, "password_changed", "lama@example.com", user_id=user_id)
    await enqueue(runtime.db, "email_changed", "lama@example.com", user_id=user_id)
    await runtime.sender.send_due()
    await enqueue(
        runtime.db, "password_changed", "lama@example.com", user_id=user_id, dedupe_key="p"
    )
    old = utcnow() - timedelta(days=91)
    async with runtime.db.write() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.template == "email_changed")
            .values(updated_at=old)
        )
        await conn.execute(
            update(deliveries).where(deliveries.c.dedupe_key == "p").values(updated_at=old)
        )
    await runtime._purge()
    left = {(r.template, r.state) for r in await ledger(runtime.db)}
    assert left == {("password_changed", "sent"), ("password_changed", "pending")}


async def test_the_users_api_still_works_with_mail_wired(users_api: UsersApi) -> None:
    assert (await users_api.register())["email"]


@asynccontextmanager
async def api_of(app: FastAPI) -> AsyncIterator[UsersApi]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://users.test") as client:
        yield UsersApi(client, app)


def order_event(
    user_id: str, status: str, *, created: bool = False, order: dict[str, Any] | None = ORDER
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "user_id": user_id,
        "type": "order.created" if created else "order.status_changed",
        "order_id": ORDER_ID,
        "status": status,
        "message": f"Order {status}.",
        "occurred_at": "2026-11-26T10:00:00Z",
    }
    if order is not None:
        event["order"] = order
    return event


STATUS_SUBJECTS = {
    ("processing", True): ("Order #0A1B2C3D received", "Pesanan #0A1B2C3D diterima"),
    ("pending_payment", False): (
        "Order #0A1B2C3D is waiting for payment",
        "Pesanan #0A1B2C3D menunggu pembayaran",
    ),
    ("processing", False): (
        "Order #0A1B2C3D is being prepared",
        "Pesanan #0A1B2C3D sedang disiapkan",
    ),
    ("shipped", False): ("Order #0A1B2C3D has been shipped", "Pesanan #0A1B2C3D telah dikirim"),
    ("completed", False): ("Order #0A1B2C3D is completed", "Pesanan #0A1B2C3D selesai"),
    ("cancelled", False): ("Order #0A1B2C3D has been cancelled", "Pesanan #0A1B2C3D dibatalkan"),
}


async def test_order_notifications_are_mailed_for_every_status_in_both_languages(
    mail_app: FastAPI, mail_sink: MailSink
) -> None:
    runtime = runtime_of(mail_app)
    english = await add_user(runtime.db, "en@example.com", language="en")
    indonesian = await add_user(runtime.db, "id@example.com", language="id")
    events = [
        order_event(user, status, created=created)
        for (status, created) in STATUS_SUBJECTS
        for user in (english, indonesian)
    ]
    async with api_of(mail_app) as api:
        token = await api.service_token()
        response = await api.client.post(
            "/internal/notifications/batch",
            json={"events": events},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
    assert (await runtime.sender.send_due()).sent == len(events)
    for address, column in (("en@example.com", 0), ("id@example.com", 1)):
        received = mail_sink.to(address)
        assert sorted(str(m["Subject"]) for m in received) == sorted(
            subjects[column] for subjects in STATUS_SUBJECTS.values()
        )
        for message in received:
            text = MailSink.text(message)
            total = "Rp\u00a0107,500" if column == 0 else "Rp\u00a0107.500"
            assert f"Total: {total}" in text, text
            assert "Kopi Toraja 250 g" in text and "Teh <Melati>" in text
            assert f"http://127.0.0.1:8000/orders/{ORDER_ID}" in text


async def test_order_mail_follows_the_customers_choice_and_the_shops(
    users_database_url: str, mail_sink: MailSink
) -> None:
    settings = smtp_settings(users_database_url, mail_sink, admin_order_emails=False)
    app = create_app(settings)
    try:
        async with lifespan_of(app), api_of(app) as api:
            runtime = runtime_of(app)
            quiet = await add_user(runtime.db, "quiet@example.com", order_emails=False)
            await api.account("boss@example.com", admin=True)
            async with runtime.db.write() as conn:  # not the boss's verification mail
                await conn.execute(deliveries.delete())
            token = await api.service_token()
            headers = {"Authorization": f"Bearer {token}"}
            event = order_event(quiet, "processing", created=True)
            for _ in range(2):  # a redelivery stores and enqueues nothing more
                response = await api.client.post(
                    "/internal/notifications", json=event, headers=headers
                )
                assert response.status_code == 202, response.text
            assert await ledger(runtime.db) == []  # nothing enqueued, for anyone
            assert (await runtime.sender.send_due()).claimed == 0
    finally:
        await clear_tables(users_database_url, metadata)


async def test_admins_hear_of_each_new_order_and_old_senders_still_work(
    mail_app: FastAPI, mail_sink: MailSink
) -> None:
    runtime = runtime_of(mail_app)
    async with api_of(mail_app) as api:
        boss = await api.account("boss@example.com", admin=True)
        customer = await add_user(runtime.db, "pembeli@example.com")
        token = await api.service_token()
        headers = {"Authorization": f"Bearer {token}"}
        old_style = order_event(customer, "processing", created=True, order=None)
        response = await api.client.post("/internal/notifications", json=old_style, headers=headers)
        assert response.status_code == 202, response.text
        too_long = order_event(customer, "shipped")
        too_long["order"] = {**ORDER, "lines": ORDER["lines"] * 101}  # type: ignore[operator]
        response = await api.client.post("/internal/notifications", json=too_long, headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert (await runtime.sender.send_due()).sent == 2
    (to_admin,) = mail_sink.to(boss.email)
    assert str(to_admin["Subject"]).startswith("Pesanan baru #0A1B2C3D")
    assert "pembeli@example.com" in MailSink.text(to_admin)
    assert f"/admin/orders/{ORDER_ID}" in MailSink.text(to_admin)
    # An admin demoted before their mail went out is not told.
    async with api_of(mail_app) as api:
        second = order_event(customer, "processing", created=True, order=None)
        response = await api.client.post("/internal/notifications", json=second, headers=headers)
        assert response.status_code == 202, response.text
    async with runtime.db.write() as conn:
        await conn.execute(update(users).where(users.c.id == boss.id).values(role="customer"))
    assert (await runtime.sender.send_due()).dropped == 1
    assert len(mail_sink.to(boss.email)) == 1
    (to_customer, _second) = mail_sink.to("pembeli@example.com")
    assert to_customer["Subject"] == "Pesanan #0A1B2C3D diterima"
    assert "Total:" not in MailSink.text(to_customer)  # no lines known, none shown


def test_the_indonesian_catalogue_translates_every_message_with_its_placeholders() -> None:
    import re

    from babel.messages.pofile import read_po

    from pasar_users.mail.render import LOCALE_DIR, TEMPLATE_DIR

    with (LOCALE_DIR / "id" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalogue = read_po(source, locale="id")
    placeholder = re.compile(r"%\(\w+\)s")
    messages = [m for m in catalogue if m.id]
    assert len(messages) > 30
    for message in messages:
        assert message.string, message.id
        assert sorted(placeholder.findall(str(message.id))) == sorted(
            placeholder.findall(str(message.string))
        ), message.id
    # Every template has both parts.
    names = {p.stem for p in TEMPLATE_DIR.iterdir() if not p.name.startswith(("_", "base"))}
    for name in names:
        assert (TEMPLATE_DIR / f"{name}.txt").exists() and (TEMPLATE_DIR / f"{name}.html").exists()


def _certificate(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client's that
    trusts it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert = directory / "cert.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private = directory / "key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, private)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def _outgoing(to: str) -> Outgoing:
    message = EmailMessage()
    message["From"] = "toko@pasar.test"
    message["To"] = to
    message["Subject"] = "Halo"
    message["Message-ID"] = f"<{uuid.uuid4()}@pasar.test>"
    message.set_content("Halo!")
    return Outgoing(delivery_id=str(uuid.uuid4()), message=message, links=())


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_smtp_over_tls_with_a_login(tmp_path: Path, security: str) -> None:
    server, client = _certificate(tmp_path)
    tls_options = {"starttls": server} if security == "starttls" else {"tls": server}
    with MailSink(login=("toko", "rahasia-smtp"), **tls_options) as sink:  # type: ignore[arg-type]

        def transport(password: str, *, security: str = security) -> SmtpTransport:
            return SmtpTransport(
                host="127.0.0.1",
                port=sink.port,
                security=security,
                username="toko",
                password=password,
                timeout=5,
                tls_context=client,
            )

        await transport("rahasia-smtp").send(_outgoing("a@example.com"), now=utcnow())
        assert [m["To"] for m in sink.messages] == ["a@example.com"]
        # A wrong password is the operator's to mend: retried, not failed for good.
        with pytest.raises(TemporaryFailure, match="535"):
            await transport("wrong").send(_outgoing("b@example.com"), now=utcnow())
        if security == "starttls":
            # Plain text where the server insists on STARTTLS is refused, never sent.
            with pytest.raises(DeliveryFailure):
                await transport("rahasia-smtp", security="none").send(
                    _outgoing("c@example.com"), now=utcnow()
                )
        assert len(sink.messages) == 1


async def test_a_mail_server_that_never_answers_times_out_as_temporary() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        transport = SmtpTransport(
            host="127.0.0.1",
            port=port,
            security="none",
            username=None,
            password=None,
            timeout=0.3,
        )
        with pytest.raises(TemporaryFailure):
            await transport.send(_outgoing("a@example.com"), now=utcnow())


async def test_a_kept_connection_is_reused_and_replaced_when_the_server_restarted() -> None:
    sink = MailSink().start()
    transport = SmtpTransport(
        host="127.0.0.1", port=sink.port, security="none", username=None, password=None, timeout=5
    )
    try:
        await transport.send(_outgoing("a@example.com"), now=utcnow())
        await transport.send(_outgoing("b@example.com"), now=utcnow())
        assert len(transport._idle) == 1  # one connection carried both
        sink.stop()
        sink.start()  # the kept connection is dead now
        await transport.send(_outgoing("c@example.com"), now=utcnow())
        assert [m["To"] for m in sink.messages] == [
            "a@example.com",
            "b@example.com",
            "c@example.com",
        ]
        sink.refuse = "554 5.7.1 Rejected"
        with pytest.raises(PermanentFailure):
            await transport.send(_outgoing("d@example.com"), now=utcnow())
        assert transport._idle == []  # a connection that saw an error is not kept
    finally:
        await transport.close()
        sink.stop()
