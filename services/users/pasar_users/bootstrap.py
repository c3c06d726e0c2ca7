"""The one place that wires the User-Service together: database, clock, password hashing,
signing keys, the token authority (grants, throttles, service clients), the verifier of
its own tokens, the mail sender and the background jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Clock, Database, utcnow
from pasar_kit.workers import Jobs
from pasar_users import email_tokens, keys, tokens
from pasar_users.clients import ServiceClients
from pasar_users.grants import Authority
from pasar_users.keys import KeyRing, RingKeys
from pasar_users.mail import outbox
from pasar_users.mail.render import Renderer
from pasar_users.mail.sender import Policy, Sender
from pasar_users.mail.transports import FileTransport, SmtpTransport, Transport
from pasar_users.passwords import Passwords
from pasar_users.settings import Settings
from pasar_users.throttle import Throttle, ThrottlePolicy
from pasar_users.tokens import TokenPolicy

log = logging.getLogger("pasar.users")

RELOAD_KEYS = "reload-signing-keys"
PURGE = "purge-expired"
# The mail sender (the outbox's worker); code that enqueues mail nudges it by this name.
SEND_MAIL = "send-mail"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    passwords: Passwords
    keys: KeyRing
    authority: Authority
    # Our own tokens are verified against the keys in memory: no HTTP to ourselves.
    verifier: TokenVerifier
    sender: Sender
    # The service's clock: tests move time without sleeping.
    clock: Clock = utcnow
    jobs: Jobs = field(default_factory=Jobs)

    async def start(self) -> None:
        """Load the signing keys (best effort: readiness retries), warm the hasher and,
        if enabled, start the jobs."""
        try:
            await self.load_keys()
        except (SQLAlchemyError, OSError):
            log.exception("could not load the signing keys; /readyz retries")
        await self.passwords.prepare()
        if self.settings.workers_enabled:
            self.jobs.add(RELOAD_KEYS, self.load_keys, self.settings.key_reload_seconds)
            self.jobs.add(PURGE, self._purge, self.settings.purge_interval_seconds)
            self.jobs.add(SEND_MAIL, self.sender.tick, self.settings.mail_poll_seconds)
        self.jobs.start()

    async def close(self) -> None:
        await self.jobs.stop()
        await self.sender.transport.close()
        self.passwords.close()
        await self.db.dispose()

    async def load_keys(self) -> int:
        """Load the keys from the database (creating the first one); safe to call again."""
        if not self.keys.fixed:
            self.keys.replace(await keys.ensure_signing_key(db=self.db, now=self.clock()))
        return 0

    async def signing_key_ready(self) -> None:
        if not self.keys.loaded:
            # Started while the database was unreachable: try again now.
            await self.load_keys()
        if not self.keys.loaded:
            raise RuntimeError("no signing key loaded")

    async def _purge(self) -> int:
        await tokens.purge_expired(db=self.db, now=self.clock())
        async with self.db.write() as conn:
            await email_tokens.purge_expired(conn, now=self.clock())
        await self.authority.throttle.purge()
        retention = timedelta(days=self.settings.mail_retention_days)
        await outbox.purge_settled(db=self.db, older_than=self.clock() - retention)
        return 0  # never "a full batch": wait for the next tick


def build_runtime(settings: Settings, *, clock: Clock = utcnow) -> Runtime:
    """Everything the service runs on; nothing connects until ``start``. A ``clock`` given
    by a test replaces the real time."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    passwords = Passwords.from_settings(settings)
    ring = _key_ring(settings)
    authority = Authority(
        db=db,
        passwords=passwords,
        keys=ring,
        policy=TokenPolicy(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl_seconds=settings.access_token_ttl_seconds,
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        ),
        throttle=Throttle(db, _throttle_policy(settings), clock=clock),
        clients=ServiceClients(settings.service_clients, passwords),
    )
    verifier = TokenVerifier(
        RingKeys(ring, db), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    renderer = Renderer(
        storefront_url=settings.storefront_url,
        shop_name=settings.shop_name,
        mail_from=settings.mail_from,
    )
    sender = Sender(
        db=db,
        renderer=renderer,
        transport=build_transport(settings),
        policy=_mail_policy(settings),
        clock=clock,
    )
    return Runtime(
        settings=settings,
        db=db,
        passwords=passwords,
        keys=ring,
        authority=authority,
        verifier=verifier,
        sender=sender,
        clock=clock,
    )


def build_transport(settings: Settings) -> Transport:
    """Where mail goes: files under ``mail_dir`` or the SMTP server of the settings."""
    if settings.mail_transport == "file":
        return FileTransport(Path(settings.mail_dir))
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=password,
        timeout=settings.smtp_timeout_seconds,
    )


def _mail_policy(settings: Settings) -> Policy:
    return Policy(
        batch_size=settings.mail_batch_size,
        concurrency=settings.mail_concurrency,
        max_attempts=settings.mail_max_attempts,
        retry_base_seconds=settings.mail_retry_base_seconds,
        retry_max_seconds=settings.mail_retry_max_seconds,
        timeout_seconds=settings.smtp_timeout_seconds,
        verification_ttl=timedelta(seconds=settings.email_verification_ttl_seconds),
        reset_ttl=timedelta(seconds=settings.password_reset_ttl_seconds),
    )


def _key_ring(settings: Settings) -> KeyRing:
    if settings.signing_key_pem is not None:
        assert settings.signing_key_id is not None
        pem = settings.signing_key_pem.get_secret_value().encode()
        return KeyRing.from_pem(settings.signing_key_id, pem)
    return KeyRing()


def _throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        window_seconds=settings.login_window_seconds,
        pair_free_failures=settings.login_pair_free_failures,
        base_delay_seconds=settings.login_base_delay_seconds,
        pair_max_delay_seconds=settings.login_pair_max_delay_seconds,
        account_soft_limit=settings.login_account_soft_limit,
        account_max_delay_seconds=settings.login_account_max_delay_seconds,
        address_max_failures=settings.login_address_max_failures,
        registrations_per_address=settings.registrations_per_address,
        registration_window_seconds=settings.registration_window_seconds,
        verification_resend_seconds=settings.verification_resend_seconds,
        verification_emails_per_day=settings.verification_emails_per_day,
        password_resets_per_email=settings.password_resets_per_email,
        password_resets_per_address=settings.password_resets_per_address,
        password_reset_window_seconds=settings.password_reset_window_seconds,
    )
