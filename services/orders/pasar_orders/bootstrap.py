"""The one place that wires the Order-Service together: database, token verification
(keys and revocations from the User-Service), clients of the other services, the
payment provider and the background jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from pasar_kit.auth import PolledRevocations, RemoteJWKS, TokenVerifier
from pasar_kit.db import Database, utcnow
from pasar_kit.http import CircuitBreaker, ClientCredentials, ServiceClient
from pasar_kit.problems import DependencyUnavailable
from pasar_kit.workers import Jobs
from pasar_orders.outbox import relay_outbox
from pasar_orders.payments import PaymentProvider, provider_named
from pasar_orders.placement import PlacementPolicy
from pasar_orders.recovery import expire_unpaid_orders, purge_old_records, recover_stuck_placements
from pasar_orders.remote import ProductsApi, UsersApi
from pasar_orders.settings import Settings
from pasar_orders.settlement import settle_cancelled_orders

log = logging.getLogger("pasar.orders")

OUTBOX = "outbox-relay"
SETTLEMENT = "settlement"
RECOVERY = "placement-recovery"
EXPIRY = "payment-expiry"
PURGE = "purge"

# How long delivered notifications are kept (for diagnosis) before they are purged.
KEEP_EVENTS_SECONDS = 7 * 86_400
# A reservation awaiting payment must outlive the payment window.
RESERVATION_MARGIN_SECONDS = 300


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: RemoteJWKS
    verifier: TokenVerifier
    users: UsersApi
    products: ProductsApi
    payments: PaymentProvider | None
    policy: PlacementPolicy
    revocations: PolledRevocations | None = None
    jobs: Jobs = field(default_factory=Jobs)

    def nudge(self, name: str) -> None:
        """Run a job now (new work was just committed) rather than at its next tick."""
        self.jobs.nudge(name)

    async def start(self) -> None:
        """Fetch the signing keys, poll the revocations and, if enabled, start the jobs."""
        # Best effort, so tokens still verify if the User-Service goes down before this
        # replica's first request; users being slow or down must not stop this replica
        # from starting: the first token fetches the keys again.
        try:
            await self.keys.get("")
        except DependencyUnavailable as exc:
            log.warning("signing keys not fetched at start-up: %s", exc)
        if self.revocations is not None:
            await self.revocations.start()
        if self.settings.workers_enabled:
            self._start_jobs()

    def _start_jobs(self) -> None:
        s = self.settings
        self.jobs.add(OUTBOX, self._relay, s.outbox_interval_seconds)
        self.jobs.add(SETTLEMENT, self._settle, s.recovery_interval_seconds)
        self.jobs.add(RECOVERY, self._recover, s.recovery_interval_seconds)
        self.jobs.add(PURGE, self._purge, 3600)
        if s.payments_enabled:
            self.jobs.add(EXPIRY, self._expire, s.recovery_interval_seconds)
        self.jobs.start()

    async def close(self) -> None:
        await self.jobs.stop()
        if self.revocations is not None:
            await self.revocations.stop()
        await self.users.client.close()
        await self.products.client.close()
        await self.db.dispose()

    async def _relay(self) -> int:
        s = self.settings
        return await relay_outbox(
            db=self.db,
            users=self.users,
            now=utcnow(),
            batch_size=s.outbox_batch_size,
            backoff_base=s.outbox_backoff_base_seconds,
            backoff_max=s.outbox_backoff_max_seconds,
        )

    async def _settle(self) -> int:
        return await settle_cancelled_orders(
            db=self.db, products=self.products, payments=self.payments, now=utcnow()
        )

    async def _recover(self) -> int:
        return await recover_stuck_placements(
            db=self.db,
            products=self.products,
            now=utcnow(),
            deadline_seconds=self.settings.placing_deadline_seconds,
        )

    async def _expire(self) -> int:
        cancelled = await expire_unpaid_orders(
            db=self.db, now=utcnow(), window_seconds=self.settings.payment_window_seconds
        )
        if cancelled:
            self.nudge(OUTBOX)
            self.nudge(SETTLEMENT)
        return cancelled

    async def _purge(self) -> int:
        await purge_old_records(
            db=self.db,
            now=utcnow(),
            idempotency_ttl_seconds=self.settings.idempotency_ttl_seconds,
            keep_events_seconds=KEEP_EVENTS_SECONDS,
        )
        return 0  # never loop straight again: this is housekeeping


def _client(
    name: str, url: str, settings: Settings, credentials: ClientCredentials | None
) -> ServiceClient:
    return ServiceClient(
        name,
        url,
        connect_timeout=settings.http_connect_timeout,
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        breaker=CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_reset_seconds),
        credentials=credentials,
    )


def build_runtime(settings: Settings) -> Runtime:
    credentials = None
    if settings.client_id and settings.client_secret is not None:
        credentials = ClientCredentials(
            settings.token_url,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            timeout=settings.http_timeout,
        )
    ttl = (
        settings.payment_window_seconds + RESERVATION_MARGIN_SECONDS
        if settings.payments_enabled
        else None
    )
    keys = RemoteJWKS(
        settings.effective_jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
        timeout=settings.http_timeout,
    )
    # A demoted or deactivated user's tokens stop working within a poll or two.
    revocations = PolledRevocations.from_settings(settings, users_url=settings.users_url)
    verifier = TokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        revocations=revocations,
    )
    return Runtime(
        settings=settings,
        db=Database(settings.database_url, pool_size=settings.database_pool_size),
        keys=keys,
        verifier=verifier,
        revocations=revocations,
        users=UsersApi(_client("users", settings.users_url, settings, credentials)),
        products=ProductsApi(_client("products", settings.products_url, settings, credentials)),
        payments=provider_named(settings.payment_provider),
        policy=PlacementPolicy(
            payments_enabled=settings.payments_enabled,
            reservation_ttl_seconds=ttl,
            stale_claim_after=timedelta(seconds=2 * settings.placing_deadline_seconds),
            max_unpaid_orders=settings.max_unpaid_orders if settings.payments_enabled else None,
        ),
    )
