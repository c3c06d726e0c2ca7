"""The Product-Service's configuration (environment variables prefixed ``PRODUCTS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from pasar_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCTS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/products.db"
    jwks_url: str | None = "http://127.0.0.1:8001/.well-known/jwks.json"
    # Where token revocations are polled (with PRODUCTS_CLIENT_ID / _SECRET, scope
    # users:read); without credentials a demoted admin keeps admin powers until the
    # access token expires.
    users_url: str = "http://127.0.0.1:8001"
    currency: str = Field(default="IDR", pattern=r"^[A-Z]{3}$")

    # A held reservation comes back to stock after this long unless committed.
    reservation_ttl_seconds: int = Field(default=900, ge=1, le=86_400)
    expiry_interval_seconds: float = Field(default=5, gt=0)
    expiry_batch_size: int = Field(default=100, ge=1, le=10_000)
    workers_enabled: bool = True

    # How long a listing total may be reused (0: count every time). See listing.TotalsCache.
    list_total_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    # How long a whole anonymous listing page may be served again (0: never). See
    # listing.PageCache.
    list_page_cache_seconds: float = Field(default=1.0, ge=0, le=60)

    # Where the service is reached from outside (browsers): image URLs in answers are
    # absolute, made from it.
    public_url: str = Field(default="http://127.0.0.1:8002", pattern=r"^https?://[^\s/]+(/\S*)?$")
    # Uploaded images and their variants (see storage.py). A local directory belongs to
    # one replica: replicas need an object store instead.
    image_dir: Path = Path("./var/images")
    # An upload's file, at most; more is 413 image_too_large, and is not read to its end.
    image_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    # Width x height, read from the header before any pixel is decoded. At most Pillow's
    # own decompression-bomb threshold, so Pillow never refuses (or warns) first.
    image_max_pixels: int = Field(default=40_000_000, ge=1, le=89_478_485)
    image_max_per_product: int = Field(default=12, ge=1, le=100)

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    # How long the search vocabulary (for typo correction) and the synonym rules are
    # kept in memory before being read again; a synonym edit through this process
    # drops them at once. See search.lexicon.
    search_terms_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
