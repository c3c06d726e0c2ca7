"""The one place that wires the Product-Service together: database, clock, token
verification (keys and revocations from the User-Service), the listing caches, the
image store, the search lexicon and the background jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from anyio import CapacityLimiter

from pasar_kit.auth import PolledRevocations, RemoteJWKS, TokenVerifier
from pasar_kit.db import Clock, Database, utcnow
from pasar_kit.workers import Jobs
from pasar_products.listing import ListingCache, PageCache, TotalsCache
from pasar_products.reservations import expire_reservations
from pasar_products.search.lexicon import Lexicon
from pasar_products.settings import Settings
from pasar_products.storage import ImageStore, LocalImageStore

log = logging.getLogger("pasar.products")

EXPIRY = "reservation-expiry"


def default_verifier(
    settings: Settings, revocations: PolledRevocations | None = None
) -> TokenVerifier:
    """Tokens checked offline against the User-Service's JWKS (cached), and against
    the revocations it publishes (polled)."""
    if not settings.jwks_url:
        raise ValueError("PRODUCTS_JWKS_URL must be set")
    keys = RemoteJWKS(
        settings.jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
        timeout=settings.http_timeout,
    )
    return TokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        revocations=revocations,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    verifier: TokenVerifier
    listing: ListingCache
    images: ImageStore
    lexicon: Lexicon
    # The service's clock: tests move time without sleeping.
    clock: Clock = utcnow
    revocations: PolledRevocations | None = None
    jobs: Jobs = field(default_factory=Jobs)
    # Uploads decoded at once: each holds a decoded image (up to the pixel limit, 4 bytes
    # a pixel) in memory, and the machine has only so many cores to resize them.
    image_work: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(2))

    async def start(self) -> None:
        """Poll the revocations and, if enabled, start the background jobs."""
        if self.revocations is not None:
            await self.revocations.start()
        if self.settings.workers_enabled:
            self.jobs.add(EXPIRY, self._expire, self.settings.expiry_interval_seconds)
        self.jobs.start()

    async def close(self) -> None:
        await self.jobs.stop()
        if self.revocations is not None:
            await self.revocations.stop()
        await self.db.dispose()

    async def _expire(self) -> int:
        return await expire_reservations(
            db=self.db, now=self.clock(), batch_size=self.settings.expiry_batch_size
        )


def build_runtime(
    settings: Settings,
    *,
    verifier: TokenVerifier | None = None,
    clock: Clock = utcnow,
) -> Runtime:
    """Everything the service runs on; nothing connects until ``start``. A ``verifier``
    given by a test replaces the User-Service's keys and revocations."""
    revocations = None
    if verifier is None:
        revocations = PolledRevocations.from_settings(settings, users_url=settings.users_url)
        if revocations is None:
            log.warning(
                "PRODUCTS_CLIENT_ID / PRODUCTS_CLIENT_SECRET are not set: token "
                "revocations are not polled, so a demoted admin keeps admin powers "
                "here until their access token expires"
            )
    return Runtime(
        settings=settings,
        db=Database(settings.database_url, pool_size=settings.database_pool_size),
        verifier=verifier or default_verifier(settings, revocations),
        listing=ListingCache(
            totals=TotalsCache(settings.list_total_cache_seconds),
            pages=PageCache(settings.list_page_cache_seconds),
            facets=PageCache(settings.list_page_cache_seconds),
            suggestions=PageCache(settings.list_page_cache_seconds),
        ),
        images=LocalImageStore(settings.image_dir),
        lexicon=Lexicon(settings.search_terms_cache_seconds),
        clock=clock,
        revocations=revocations,
    )
