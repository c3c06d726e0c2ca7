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
from pasar_orders.gateways import Gateway
from pasar_orders.midtrans import MidtransGateway
from pasar_orders.online_payments import Timing, check_pending_payments
from pasar_orders.outbox import relay_outbox
from pasar_orders.payments import PaymentProvider, TestCardProvider
from pasar_orders.placement import PlacementPolicy
from pasar_orders.recovery import expire_unpaid_orders, purge_old_records, recover_stuck_placements
from pasar_orders.remote import ProductsApi, UsersApi
from pasar_orders.settings import Settings
from pasar_orders.settlement import Refunds, settle_cancelled_orders
from pasar_orders.xendit import XenditGateway

log = logging.getLogger("pasar.orders")

OUTBOX = "outbox-relay"
SETTLEMENT = "settlement"
RECOVERY = "placement-recovery"
EXPIRY = "payment-expiry"
PURGE = "purge"
PAYMENT_CHECKS = "payment-checks"

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
    payments: PaymentProvider | None  # the test cards
    policy: PlacementPolicy
    gateway: Gateway | None = None  # midtrans or xendit
    revocations: PolledRevocations | None = None
    jobs: Jobs = field(default_factory=Jobs)

    @property
    def refunds(self) -> Refunds | None:
        return self.gateway or self.payments

    @property
    def payment_timing(self) -> Timing:
        s = self.settings
        return Timing(
            window=timedelta(seconds=s.payment_window_seconds),
            check_after=timedelta(seconds=s.payment_check_after_seconds),
        )

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
        if self.gateway is not None:
            self.jobs.add(PAYMENT_CHECKS, self._check_payments, s.payment_check_interval_seconds)
        self.jobs.start()

    async def close(self) -> None:
        await self.jobs.stop()
        if self.revocations is not None:
            await self.revocations.stop()
        await self.users.client.close()
        await self.products.client.close()
        if self.gateway is not None:
            await self.gateway.close()
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
            db=self.db, products=self.products, payments=self.refunds, now=utcnow()
        )

    async def _check_payments(self) -> int:
        assert self.gateway is not None
        changed = await check_pending_payments(
            db=self.db,
            products=self.products,
            gateway=self.gateway,
            now=utcnow(),
            interval=timedelta(seconds=self.settings.payment_check_interval_seconds),
        )
        if changed:
            self.nudge(OUTBOX)
            self.nudge(SETTLEMENT)
        return 0  # one batch per interval: the gateway is not to be hammered

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


def _gateway(settings: Settings) -> Gateway | None:
    """The configured gateway; its calls use the kit's client with the shop's timeouts."""

    def client(name: str, url: str) -> ServiceClient:
        return _client(name, url, settings, None)

    if settings.payment_provider == "midtrans":
        assert settings.midtrans_server_key is not None  # checked by the settings
        return MidtransGateway(
            server_key=settings.midtrans_server_key.get_secret_value(),
            snap=client("midtrans", settings.midtrans_snap_url),
            api=client("midtrans", settings.midtrans_api_url),
            return_url=settings.payment_return_url,
        )
    if settings.payment_provider == "xendit":
        assert settings.xendit_secret_key is not None
        assert settings.xendit_callback_token is not None
        return XenditGateway(
            secret_key=settings.xendit_secret_key.get_secret_value(),
            callback_token=settings.xendit_callback_token.get_secret_value(),
            api=client("xendit", settings.xendit_api_url),
            return_url=settings.payment_return_url,
        )
    return None


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
        payments=TestCardProvider() if settings.payment_provider == "test" else None,
        gateway=_gateway(settings),
        policy=PlacementPolicy(
            payments_enabled=settings.payments_enabled,
            reservation_ttl_seconds=ttl,
            stale_claim_after=timedelta(seconds=2 * settings.placing_deadline_seconds),
            max_unpaid_orders=settings.max_unpaid_orders if settings.payments_enabled else None,
            require_verified_email=settings.require_verified_email,
        ),
    )
