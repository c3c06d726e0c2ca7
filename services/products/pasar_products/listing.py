"""The public catalogue listing, its facets and the category counts: the service's
hottest reads.

Core selects with explicit columns, one query for the page and one for the total. A
search (``q``) goes through each database's full-text index (``search/``): every word
must match, the last also as a prefix, by stem and synonym too; when nothing matches, a
near spelling is tried once (``corrected_q``). A query with no letter or digit in it
(``%``, ``'``, an emoji) has no words to look up, so it is matched as a literal substring
(``%``, ``_`` and ``\\`` escaped), which scans, as every search did before the index.

Counting ~100,000 matching rows costs more than fetching a page of 20 (it reads the whole
index range), so totals are kept for a couple of seconds per filter (``TotalsCache``),
and the anonymous pages themselves for about a second (``PageCache``); both are dropped
whenever an admin changes the catalogue through this process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import astuple, dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, FromClause, case, func, or_, select, true

from pasar_kit.db import Database
from pasar_products.catalogue import PRODUCT_COLUMNS, Product, with_images
from pasar_products.search import analysis
from pasar_products.search.lexicon import Lexicon
from pasar_products.search.query import Group, matches, plan
from pasar_products.tables import products

V = TypeVar("V")

Sort = Literal["name", "-name", "price", "-price", "created_at", "-created_at", "relevance"]

_SORT_COLUMNS = {
    "name": products.c.name,
    "price": products.c.price,
    "created_at": products.c.created_at,
}


@dataclass(frozen=True)
class ProductQuery:
    q: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool = False
    include_archived: bool = False  # the admin pages' view
    sort: Sort = "name"
    limit: int = 20
    offset: int = 0


class _Expiring(Generic[V]):
    """Values kept for ``ttl_seconds`` by key, the least recently stored dropped first
    beyond ``max_entries``; a TTL of 0 keeps nothing."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = 1024) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[object, ...], tuple[float, V]] = OrderedDict()

    def key(self, query: ProductQuery) -> tuple[object, ...]:
        return astuple(query)

    def get(self, query: ProductQuery) -> V | None:
        entry = self._entries.get(self.key(query))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, query: ProductQuery, value: V) -> None:
        if self.ttl_seconds <= 0:
            return
        key = self.key(query)
        self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class TotalsCache(_Expiring[int]):
    """Recent totals by filter, so a page does not pay for a full count every time.

    A total may lag behind changes made by another replica for at most ``ttl_seconds``.
    """

    def key(self, query: ProductQuery) -> tuple[object, ...]:
        return astuple(replace(query, sort="name", limit=0, offset=0))


class PageCache(_Expiring[bytes]):
    """Whole anonymous pages as sent (JSON), for about a second: the way shops microcache
    their busiest pages. An admin's change through this process drops them at once; the
    stock a page shows may lag behind reservations and other replicas for at most
    ``ttl_seconds`` (a product's own page and every reservation read the database)."""


@dataclass
class ListingCache:
    """What the listing keeps between requests; every admin change to the catalogue or
    its stock made through this process clears it."""

    totals: TotalsCache
    pages: PageCache
    # Anonymous facet and suggestion answers as sent, like ``pages``.
    facets: PageCache = field(default_factory=lambda: PageCache(0))
    suggestions: PageCache = field(default_factory=lambda: PageCache(0))

    def clear(self) -> None:
        self.totals.clear()
        self.pages.clear()
        self.facets.clear()
        self.suggestions.clear()


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, with wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(
    query: ProductQuery, *, categories: bool = True, prices: bool = True
) -> list[ColumnElement[bool]]:
    """The filters as conditions on ``products``; ``q`` only when it has no words (the
    literal fallback), the index answers the rest. Facets leave out the filter they count
    by, so the shopper sees what switching it would give."""
    conditions: list[ColumnElement[bool]] = []
    if not query.include_archived:
        conditions.append(products.c.active == true())
    if query.q and not analysis.words(query.q):
        pattern = like_pattern(query.q)
        conditions.append(
            or_(
                products.c.name.ilike(pattern, escape="\\"),
                products.c.sku.ilike(pattern, escape="\\"),
                products.c.description.ilike(pattern, escape="\\"),
            )
        )
    if query.category is not None and categories:
        conditions.append(products.c.category == query.category)
    if query.min_price is not None and prices:
        conditions.append(products.c.price >= query.min_price)
    if query.max_price is not None and prices:
        conditions.append(products.c.price <= query.max_price)
    if query.in_stock:
        conditions.append(products.c.stock > 0)
    return conditions


@dataclass(frozen=True)
class Listing:
    items: list[Product]
    total: int
    # The query these results are for, when ``q`` matched nothing and a near spelling did.
    corrected_q: str | None = None


@dataclass(frozen=True)
class _Search:
    """What the listing runs: the query (``q`` corrected or not) and its index groups
    (None without ``q``, or for the literal fallback)."""

    query: ProductQuery
    groups: tuple[Group, ...] | None
    corrected_q: str | None = None


async def _searches(
    db: Database, query: ProductQuery, lexicon: Lexicon | None
) -> tuple[_Search, Callable[[], Awaitable[_Search | None]]]:
    """The search as asked, and a way to get its corrected spelling (None if there is
    none), for when it finds nothing."""
    words = analysis.words(query.q) if query.q else []

    async def corrected() -> _Search | None:
        if not words or lexicon is None:
            return None
        snapshot = await lexicon.snapshot(db)
        better = snapshot.correct(words)
        if better is None:
            return None
        text = " ".join(better)
        return _Search(replace(query, q=text), plan(better, snapshot.synonyms), text)

    if not words:
        return _Search(query, None), corrected
    synonyms = await lexicon.synonyms(db) if lexicon is not None else {}
    return _Search(query, plan(words, synonyms)), corrected


def _source(
    dialect: str, search: _Search, *, joined: bool = False, ids: list[str] | None = None
) -> tuple[FromClause, list[ColumnElement[bool]], ColumnElement[float] | None]:
    """What to select from, the search's condition on it, and (when ``joined``) the
    relevance of a row, the higher the better.

    With ``ids`` (the few matching products, found by the index beforehand) the
    condition is that list: the server databases then fetch just those rows by primary
    key and sort them (SQLite does not: ``_page`` joins its few matches instead).
    Without, the matches are a non-correlated ``id IN (...)``, found once by the index,
    and a page can walk a sort index until it is full (good for a common word). Joined,
    they come from a materialized CTE: the matches first, then their products sorted
    (needed for the rank). Left to themselves, the planners guessed a rare word common:
    SQLite walked the name index rerunning the full-text query per product (seconds),
    PostgreSQL walked it checking each product (300 ms).
    """
    if search.groups is None:
        return products, [], None
    if ids is not None and not joined:
        return products, [products.c.id.in_(ids)], None
    matched = matches(dialect, search.groups)
    if not joined:
        subquery = matched.with_only_columns(matched.selected_columns.product_id)
        return products, [products.c.id.in_(subquery)], None
    table = matched.cte("matched")
    if dialect in ("sqlite", "postgresql"):
        table = table.prefix_with("MATERIALIZED")
    return products.join(table, table.c.product_id == products.c.id), [], table.c.rank


async def list_products(
    *,
    db: Database,
    query: ProductQuery,
    totals: TotalsCache | None = None,
    lexicon: Lexicon | None = None,
) -> Listing:
    """One page of active products and how many match in all (exactly), spelling ``q``
    anew once when it matches nothing."""
    search, corrected = await _searches(db, query, lexicon)
    rows, total = await _page(db, search, totals)
    if total == 0:
        better = await corrected()
        if better is not None:
            rows, total = await _page(db, better, totals)
            if total > 0:
                return Listing(rows, total, better.corrected_q)
    return Listing(rows, total)


async def _page(
    db: Database, search: _Search, totals: TotalsCache | None
) -> tuple[list[Product], int]:
    query = search.query
    ranked = query.sort == "relevance" and search.groups is not None
    ids = None if ranked else await _few_matching_ids(db, search)
    joined = ranked
    if ids is not None and db.dialect == "sqlite":
        # SQLite walks the name index even for a short list of ids: the joined
        # matches (a materialized CTE, sorted) are what it reads fastest.
        joined, ids = True, None
    source, matching, rank = _source(db.dialect, search, joined=joined, ids=ids)
    conditions = [*_conditions(query), *matching]
    # The id breaks ties so that consecutive pages never overlap or skip.
    order: list[Any]
    if ranked and rank is not None:
        order = [rank.desc(), products.c.name.asc(), products.c.id.asc()]
    else:
        column = _SORT_COLUMNS[query.sort.lstrip("-").replace("relevance", "name")]
        descending = query.sort.startswith("-")
        order = (
            [column.desc(), products.c.id.desc()]
            if descending
            else [column.asc(), products.c.id.asc()]
        )
    page = (
        select(*PRODUCT_COLUMNS)
        .select_from(source)
        .where(*conditions)
        .order_by(*order)
        .limit(query.limit)
        .offset(query.offset)
    )
    async with db.read() as conn:
        rows = await with_images(conn, (await conn.execute(page)).mappings().all())
        if 0 < len(rows) < query.limit or (not rows and query.offset == 0):
            total = query.offset + len(rows)  # this page holds the end of the result
        else:
            cached = totals.get(query) if totals is not None else None
            if cached is not None:
                return rows, cached
            count = (
                select(func.count())
                .select_from(products)
                .where(*_conditions(query), *_source(db.dialect, search, ids=ids)[1])
            )
            total = int((await conn.execute(count)).scalar_one())
    if totals is not None:
        totals.put(query, total)
    return rows, total


# Up to this many index hits, the ids are fetched first and the page is read by them.
FEW_MATCHES = 2000


async def _few_matching_ids(db: Database, search: _Search) -> list[str] | None:
    """The ids of the products the index finds (archived ones and every filter
    included), when there are at most ``FEW_MATCHES``; None when there are more or no
    index search. Reading at most one more than that from the index costs a millisecond
    or two even for a common word."""
    if search.groups is None:
        return None
    matched = matches(db.dialect, search.groups)
    first = matched.with_only_columns(matched.selected_columns.product_id).limit(FEW_MATCHES + 1)
    async with db.read() as conn:
        ids = list((await conn.execute(first)).scalars())
    return ids if len(ids) <= FEW_MATCHES else None


# Price bands in whole rupiah: [min, max), the last one open.
PRICE_BANDS: tuple[tuple[int, int | None], ...] = (
    (0, 25_000),
    (25_000, 50_000),
    (50_000, 100_000),
    (100_000, 250_000),
    (250_000, 500_000),
    (500_000, 1_000_000),
    (1_000_000, None),
)


@dataclass(frozen=True)
class Facets:
    total: int
    corrected_q: str | None
    categories: list[tuple[str, int]]
    # (min, max, count), every band, empty ones too
    price_bands: list[tuple[int, int | None, int]]


def _band() -> ColumnElement[int]:
    return case(
        *(
            (products.c.price < upper, index)
            for index, (_, upper) in enumerate(PRICE_BANDS)
            if upper is not None
        ),
        else_=len(PRICE_BANDS) - 1,
    )


async def facets(*, db: Database, query: ProductQuery, lexicon: Lexicon | None = None) -> Facets:
    """How many products match, and how many would per category (the category filter
    left out) and per price band (the price filters left out)."""
    search, corrected = await _searches(db, query, lexicon)
    total = await _count(db, search)
    if total == 0:
        better = await corrected()
        if better is not None and (better_total := await _count(db, better)) > 0:
            search, total = better, better_total
    _, matching, _ = _source(db.dialect, search)
    band = _band().label("band")
    by_category = (
        select(products.c.category, func.count())
        .where(*_conditions(search.query, categories=False), *matching)
        .group_by(products.c.category)
        .order_by(products.c.category)
    )
    by_band = (
        select(band, func.count())
        .where(*_conditions(search.query, prices=False), *matching)
        .group_by(band)
    )
    async with db.read() as conn:
        categories = [(str(n), int(c)) for n, c in (await conn.execute(by_category)).all()]
        bands = {int(b): int(c) for b, c in (await conn.execute(by_band)).all()}
    return Facets(
        total=total,
        corrected_q=search.corrected_q,
        categories=categories,
        price_bands=[
            (lower, upper, bands.get(index, 0)) for index, (lower, upper) in enumerate(PRICE_BANDS)
        ],
    )


async def _count(db: Database, search: _Search) -> int:
    _, matching, _ = _source(db.dialect, search)
    statement = (
        select(func.count()).select_from(products).where(*_conditions(search.query), *matching)
    )
    async with db.read() as conn:
        return int((await conn.execute(statement)).scalar_one())


async def list_categories(*, db: Database) -> list[tuple[str, int]]:
    """Each category of the active catalogue with its number of products, by name."""
    statement = (
        select(products.c.category, func.count())
        .where(products.c.active == true())
        .group_by(products.c.category)
        .order_by(products.c.category)
    )
    async with db.read() as conn:
        return [(str(name), int(n)) for name, n in (await conn.execute(statement)).all()]


async def list_low_stock(
    *, db: Database, threshold: int, limit: int, offset: int
) -> tuple[list[Product], int]:
    """Active products with at most ``threshold`` in stock, emptiest first, and their count.

    For the admin pages only, so there is no index for it: it scans the catalogue.
    """
    conditions = (products.c.active == true(), products.c.stock <= threshold)
    page = (
        select(*PRODUCT_COLUMNS)
        .where(*conditions)
        .order_by(products.c.stock.asc(), products.c.name.asc(), products.c.id.asc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(products).where(*conditions)
    async with db.read() as conn:
        total = int((await conn.execute(count)).scalar_one())
        found = (await conn.execute(page)).mappings().all() if total > offset else []
        rows = await with_images(conn, found)
    return rows, total
