"""Request and response bodies, split by use so a table row never leaks out as-is."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pasar_kit.ids import IdText
from pasar_kit.pagination import Page

# PostgreSQL cannot store NUL in text; refused here so it is a 422, not a database error.
NO_NUL = r"^[^\x00]*$"

MAX_MONEY = 10**15  # far above any price, far below BIGINT's limit
MAX_STOCK = 10**9

# The kit's id rule for a product id in a body (reservation items); paths go through
# ``deps.ProductId``.
ProductIdText = IdText
# A reservation id is chosen by the calling service (orders uses the order id).
RESERVATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Description = Annotated[str, Field(max_length=5000, pattern=NO_NUL)]
Price = Annotated[int, Field(ge=0, le=MAX_MONEY, strict=True)]
Category = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
ImageUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s\x00]+$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProductCreate(_Request):
    sku: Sku
    name: Name
    description: Description = ""
    price: Price
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK, strict=True)] = 0
    category: Category
    image_url: ImageUrl | None = None

    @field_validator("sku")
    @classmethod
    def _sku_upper(cls, value: str) -> str:
        # One spelling per SKU, so uniqueness means the same on every database collation.
        return value.upper()


class ProductUpdate(_Request):
    """Only the fields present change. ``stock`` is not here: it moves by adjustments."""

    sku: Sku | None = None
    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    category: Category | None = None
    image_url: ImageUrl | None = None
    active: Annotated[bool, Field(strict=True)] | None = None

    @field_validator("sku")
    @classmethod
    def _sku_upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in ("sku", "name", "description", "price", "category", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ImageUrls(BaseModel):
    """Absolute, content-hashed URLs (served as immutable): WebP variants that fit in 160,
    480 and 1200 px squares, with no metadata. The file as uploaded is kept but has no
    URL: its EXIF may say where a photo was taken."""

    thumbnail: str
    card: str
    full: str


class ImagePublic(BaseModel):
    id: str
    position: int = Field(description="0 is the main image")
    main: bool
    width: int = Field(description="of the original, upright")
    height: int
    urls: ImageUrls


class ImageUpdate(_Request):
    """Move an image: to ``position`` (past the end means last), or first with ``main``."""

    position: Annotated[int, Field(ge=0, le=1000, strict=True)] | None = None
    main: Literal[True] | None = None


class ProductPublic(BaseModel):
    id: str
    sku: str
    name: str
    description: str
    price: int
    currency: str
    stock: int
    category: str
    image_url: str | None = Field(
        description="The main uploaded image's full URL; without uploads, the URL given"
    )
    images: list[ImagePublic] = Field(description="Uploaded images in order, the main first")
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductPage(Page[ProductPublic]):
    """A page of the catalogue."""

    corrected_q: str | None = Field(
        default=None,
        description="The query these results are for, when q matched nothing and a near "
        "spelling did; null otherwise",
    )


class CategoryFacet(BaseModel):
    name: str
    count: int


class PriceBandFacet(BaseModel):
    min: int = Field(description="Lowest price in the band, in rupiah (inclusive)")
    max: int | None = Field(description="Exclusive upper bound; null for the open end")
    count: int


class ProductFacets(BaseModel):
    """How many products match a search and filters, and how many would per category
    (ignoring the category filter) and per price band (ignoring the price filters)."""

    total: int
    corrected_q: str | None
    categories: list[CategoryFacet]
    price_bands: list[PriceBandFacet]


class Suggestion(BaseModel):
    id: str
    name: str


# A search word as a synonym rule holds it: letters and digits, no spaces.
SearchWord = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[^\W_]+$")]


class SynonymRuleUpdate(_Request):
    expands_to: Annotated[list[SearchWord], Field(min_length=1, max_length=20)]


class SynonymRulePublic(BaseModel):
    term: str
    expands_to: list[str] = Field(description="What a query word `term` also matches")


class CategoryCount(BaseModel):
    name: str
    product_count: int


class StockAdjustmentCreate(_Request):
    delta: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK, strict=True)]
    reason: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be zero")
        return value


class StockAdjustmentPublic(BaseModel):
    id: str
    delta: int
    reason: str
    by: str | None = Field(description="The admin's user id; null for the system's own entries")
    at: datetime


class StockAdjustmentPage(Page[StockAdjustmentPublic]):
    """A page of a product's stock ledger."""


class ReservationItemIn(_Request):
    product_id: ProductIdText
    quantity: Annotated[int, Field(ge=1, le=1000, strict=True)]


class ReservationCreate(_Request):
    reservation_id: Annotated[
        str, Field(min_length=1, max_length=64, pattern=RESERVATION_ID_PATTERN)
    ]
    items: Annotated[list[ReservationItemIn], Field(min_length=1, max_length=100)]
    # Overrides the configured TTL (the Order-Service holds through a payment window).
    ttl_seconds: Annotated[int, Field(ge=1, le=86_400, strict=True)] | None = None
    # Hold and commit at once (the answer's status is "committed", and it never expires):
    # one call instead of two for a caller that takes no payment before committing.
    commit: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _commit_has_no_ttl(self) -> Self:
        if self.commit and self.ttl_seconds is not None:
            raise ValueError("a committed reservation does not expire: drop ttl_seconds")
        return self


class ReservationItemPublic(BaseModel):
    """A reserved line with its price at the moment of the reservation (the domain's
    value and the answer's item alike)."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: int
    currency: str


class ReservationPublic(BaseModel):
    reservation_id: str
    status: Literal["held", "committed", "released"]
    expires_at: datetime | None
    created_at: datetime
    items: list[ReservationItemPublic]


class ViolationPublic(BaseModel):
    product_id: str
    sku: str
    ledger: int = Field(description="initial stock plus every adjustment")
    stock: int
    held: int
    committed: int


class StockAudit(BaseModel):
    ok: bool
    violations: list[ViolationPublic]
