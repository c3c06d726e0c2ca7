"""Browsing: the catalogue grid with its filters, and a product's own page.

Every filter lives in the URL (a plain GET form), so a search can be bookmarked and
shared and the back button walks through the shopper's searches. The catalogue only
needs the Product-Service: with orders or users down it still browses.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from pasar_web.api import CatalogueQuery
from pasar_web.i18n import gettext as _
from pasar_web.i18n import lazy
from pasar_web.models import Facets, PriceBand, Product, ProductPage, Suggestion
from pasar_web.session import MAX_QUANTITY
from pasar_web.shell import PageDep

router = APIRouter()

PAGE_SIZE = 24
MAX_PAGE = 1000
SORTS: dict[str, str] = {
    "relevance": lazy("Best match"),
    "name": lazy("Name (A-Z)"),
    "-name": lazy("Name (Z-A)"),
    "price": lazy("Price: low to high"),
    "-price": lazy("Price: high to low"),
    "-created_at": lazy("Newest"),
}
_DIGITS = re.compile(r"[^0-9]")

# A category's picture on a product without an image, by words in its name.
_ICONS = (
    ("cup", ("makan", "minum", "kopi", "teh", "food", "drink")),
    ("plug", ("elektron", "gadget", "electr")),
    ("shirt", ("fashion", "pakaian", "baju", "busana", "cloth")),
    ("home", ("rumah", "dapur", "home", "kitchen")),
    ("leaf", ("sehat", "cantik", "beauty", "health")),
    ("ball", ("olahraga", "sport")),
)


@dataclass(frozen=True)
class Tile:
    """How a product without an image is drawn: a category icon on a tint of its own."""

    icon: str
    hue: int


def tile(product: Product) -> Tile:
    return _tile(product.sku, product.category)


@functools.lru_cache(maxsize=4096)
def _tile(sku: str, category: str) -> Tile:
    words_in = category.lower()
    icon = next((name for name, words in _ICONS if any(w in words_in for w in words)), "bag")
    hue = int(hashlib.sha256(sku.encode()).hexdigest()[:4], 16) % 360
    return Tile(icon=icon, hue=hue)


def rupiah(value: str | None) -> int | None:
    """A price typed by a person: ``50.000``, ``Rp 50,000`` and ``50000`` all mean 50000."""
    if not value:
        return None
    digits = _DIGITS.sub("", value[:40])
    if not digits or len(digits) > 15:
        return None
    return int(digits)


@router.get("/", name="catalogue")
async def catalogue(
    page: PageDep,
    q: str | None = None,
    category: str | None = None,
    min_price: str | None = None,
    max_price: str | None = None,
    in_stock: str | None = None,
    sort: str | None = None,
    page_number: Annotated[str, Query(alias="page")] = "1",
) -> Response:
    # Whatever the URL holds, the shopper gets a catalogue: odd values are dropped.
    q = (q or "").strip()[:100] or None
    category = (category or "").strip()[:100] or None
    low, high = rupiah(min_price), rupiah(max_price)
    if low is not None and high is not None and low > high:
        low, high = high, low
    # A search lists the best matches first; browsing lists by name.
    default_sort = "relevance" if q else "name"
    sort = sort if sort in SORTS and (q or sort != "relevance") else default_sort
    number = int(page_number) if page_number.isdigit() and len(page_number) < 5 else 1
    page_number_ = max(1, min(MAX_PAGE, number))
    query = CatalogueQuery(
        q=q,
        category=category,
        min_price=low,
        max_price=high,
        in_stock=in_stock in ("1", "true", "on"),
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page_number_ - 1) * PAGE_SIZE,
    )
    nothing = ProductPage(items=[], total=0, limit=PAGE_SIZE, offset=0)
    results, facets = await _both(page, query, nothing)
    pages = max(1, math.ceil(results.total / PAGE_SIZE))
    params = {
        "q": q,
        "category": query.category,
        "min_price": low,
        "max_price": high,
        "in_stock": "1" if query.in_stock else None,
        "sort": sort if sort != default_sort else None,
    }
    return await page.render(
        "catalogue.html",
        status=503 if "products" in page.degraded else 200,
        results=results,
        categories=facets.categories,
        all_count=sum(c.count for c in facets.categories),
        bands=[band for band in facets.price_bands if band.count or _chosen(band, low, high)],
        chosen_band=_chosen,
        query=query,
        params=params,
        sorts={key: _(label) for key, label in SORTS.items() if q or key != "relevance"},
        page_number=page_number_,
        pages=pages,
        page_window=_window(page_number_, pages),
        tile=tile,
        filtered=any(v for k, v in params.items() if k != "sort"),
    )


async def _both(
    page: PageDep, query: CatalogueQuery, nothing: ProductPage
) -> tuple[ProductPage, Facets]:
    """The page of results and the counts beside it, asked for at once."""
    none = Facets(total=0, categories=[], price_bands=[])
    results, facets = await asyncio.gather(
        page.optional("products", page.services.products.search(query), nothing),
        page.optional("products", page.services.products.facets(query), none),
    )
    return results, facets


def _chosen(band: PriceBand, low: int | None, high: int | None) -> bool:
    """Whether the price filter in use is exactly this band (whose ``max`` is exclusive)."""
    return (low or 0) == band.min and high == (band.max - 1 if band.max is not None else None)


@router.get("/suggest", name="suggest")
async def suggest(page: PageDep, q: str = "") -> list[Suggestion]:
    """Product names for what is typed in the search box so far (the page's script asks;
    without it the search box simply searches). Empty when the catalogue is down."""
    q = q.strip()[:100]
    if not q:
        return []
    return await page.optional("products", page.services.products.suggest(q), [])


def _window(current: int, pages: int, width: int = 2) -> list[int | None]:
    """Page numbers to offer: the first, the last, and a few around the current one;
    None marks a gap."""
    shown = sorted({1, pages, *range(max(1, current - width), min(pages, current + width) + 1)})
    window: list[int | None] = []
    for number in shown:
        if window and number - (window[-1] or 0) > 1:
            window.append(None)
        window.append(number)
    return window


@router.get("/products/{product_id}", name="product")
async def product_page(
    page: PageDep,
    product_id: Annotated[str, Path(max_length=64)],
    image: Annotated[int, Query(ge=0, le=100)] = 0,
) -> Response:
    found = await page.optional("products", page.services.products.get(product_id), None)
    if found is None:
        if "products" in page.degraded:
            return await page.render("unavailable.html", status=503)
        return await page.render("not_found.html", status=404)
    product, _etag = found
    in_cart = page.session.cart.get(product.id, 0)
    return await page.render(
        "product.html",
        product=product,
        tile=tile(product),
        # The picture chosen among the thumbnails (links, so no script is needed).
        shown=min(image, max(0, len(product.images) - 1)),
        in_cart=in_cart,
        max_quantity=max(1, min(product.stock, MAX_QUANTITY)),
        low_stock=0 < product.stock <= page.web.settings.low_stock_threshold,
    )
