"""Keeping the search index in step with the catalogue, inside the writer's transaction.

Every product write calls ``index_product`` on its own connection before it commits, so
a product and its index entry change together: a renamed product stops matching its
old name in the same commit. The entry holds the product's analysed terms
(``analysis.document``); each database indexes them natively (see ``tables.py``).

``search_terms`` counts the active products holding each term (the vocabulary typos are
corrected to), words of letters only: a term with a digit (a size, a model number, a
SKU part) is looked up as typed, never corrected to, and 100,000 SKUs would otherwise
be most of the vocabulary. It is changed by guarded increments, terms in sorted order, so two
writers touching the same terms queue instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, literal_column, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_products.search.analysis import document
from pasar_products.tables import product_search, products, search_terms

# InnoDB skips words shorter than innodb_ft_min_token_size (3) and its stopwords ("a",
# "in", "the", ...), both of which are real product words ("hp", "tv", "the", "a").
# On MariaDB every term is stored and searched with this prefix, so each is at least
# three characters and none is a stopword.
MARIADB_PREFIX = "xx"


def is_mariadb(dialect: str) -> bool:
    return dialect in ("mysql", "mariadb")


def encode(terms: str, dialect: str) -> str:
    """Space-separated terms as the dialect's index stores them."""
    if not is_mariadb(dialect) or not terms:
        return terms
    return " ".join(MARIADB_PREFIX + term for term in terms.split())


def decode(terms: str, dialect: str) -> list[str]:
    if not is_mariadb(dialect):
        return terms.split()
    return [term.removeprefix(MARIADB_PREFIX) for term in terms.split()]


# Built once (see ``pasar_kit.db``): every product write runs them.
_PRODUCT = select(
    products.c.sku,
    products.c.name,
    products.c.category,
    products.c.description,
    products.c.active,
).where(products.c.id == bindparam("pid"))
_ENTRY = select(
    product_search.c.active, product_search.c.name_terms, product_search.c.body_terms
).where(product_search.c.product_id == bindparam("pid"))
_INSERT_ENTRY = insert(product_search)
_UPDATE_ENTRY = (
    update(product_search)
    .where(product_search.c.product_id == bindparam("pid"))
    .values(
        active=bindparam("active"),
        name_terms=bindparam("name_terms"),
        body_terms=bindparam("body_terms"),
    )
)
_FORGET = (
    update(search_terms)
    .where(search_terms.c.term == bindparam("t"))
    .values(products=search_terms.c.products - literal_column("1"))
)


def _count_up(dialect: str) -> Any:
    """An upsert adding one product to a term's count."""
    # A literal one: asyncmy rewrites a many-row insert into one multi-row VALUES and
    # cannot place a bound parameter after it.
    plus_one = search_terms.c.products + literal_column("1")
    if is_mariadb(dialect):
        return mysql.insert(search_terms).on_duplicate_key_update(products=plus_one)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(search_terms)
    return ins.on_conflict_do_update(
        index_elements=[search_terms.c.term], set_={"products": plus_one}
    )


_COUNT_UP = {dialect: _count_up(dialect) for dialect in ("sqlite", "postgresql", "mysql")}


def countable(terms: Iterable[str]) -> set[str]:
    """The terms the vocabulary counts."""
    return {term for term in terms if term.isalpha()}


def entry_terms(sku: str, name: str, category: str, description: str) -> tuple[str, str]:
    return document(sku=sku, name=name, category=category, description=description)


async def index_product(conn: AsyncConnection, product_id: str) -> None:
    """Bring the product's index entry and the vocabulary up to date with its row."""
    dialect = conn.dialect.name
    product = (await conn.execute(_PRODUCT, {"pid": product_id})).one()
    name_terms, body_terms = entry_terms(
        product.sku, product.name, product.category, product.description
    )
    entry = (await conn.execute(_ENTRY, {"pid": product_id})).first()
    values = {
        "active": product.active,
        "name_terms": encode(name_terms, dialect),
        "body_terms": encode(body_terms, dialect),
    }
    if entry is None:
        await conn.execute(_INSERT_ENTRY, {"product_id": product_id, **values})
        before: set[str] = set()
    else:
        if (entry.active, entry.name_terms, entry.body_terms) == tuple(values.values()):
            return  # a price or stock edit: nothing the index holds changed
        await conn.execute(_UPDATE_ENTRY, {"pid": product_id, **values})
        before = (
            countable(decode(entry.name_terms, dialect) + decode(entry.body_terms, dialect))
            if entry.active
            else set()
        )
    after = countable(name_terms.split() + body_terms.split()) if product.active else set()
    await _count(conn, added=after - before, removed=before - after)


async def _count(conn: AsyncConnection, *, added: Iterable[str], removed: Iterable[str]) -> None:
    dialect = "mysql" if is_mariadb(conn.dialect.name) else conn.dialect.name
    # Sorted, so concurrent writers lock shared terms in one order.
    gone = [{"t": term} for term in sorted(removed)]
    if gone:
        await conn.execute(_FORGET, gone)
    fresh = [{"term": term, "products": 1} for term in sorted(added)]
    if fresh:
        await conn.execute(_COUNT_UP[dialect], fresh)


async def rebuild_index(conn: AsyncConnection) -> int:
    """Index every product afresh (after a bulk load that bypassed ``insert_product``,
    like the benchmark's seed); returns how many. One transaction: the caller's."""
    dialect = conn.dialect.name
    await conn.execute(delete(product_search))
    await conn.execute(delete(search_terms))
    rows = (
        await conn.execute(
            select(
                products.c.id,
                products.c.sku,
                products.c.name,
                products.c.category,
                products.c.description,
                products.c.active,
            )
        )
    ).all()
    entries, counts = build_entries(rows, dialect)
    for start in range(0, len(entries), 2000):
        await conn.execute(insert(product_search), entries[start : start + 2000])
    vocabulary = [{"term": term, "products": n} for term, n in sorted(counts.items())]
    for start in range(0, len(vocabulary), 2000):
        await conn.execute(insert(search_terms), vocabulary[start : start + 2000])
    return len(entries)


def build_entries(rows: Sequence[Any], dialect: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Index entries for product rows (id, sku, name, category, description, active)
    and the vocabulary they make: shared by ``rebuild_index`` and migration 0003."""
    entries: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for row in rows:
        name_terms, body_terms = entry_terms(row.sku, row.name, row.category, row.description)
        entries.append(
            {
                "product_id": row.id,
                "active": row.active,
                "name_terms": encode(name_terms, dialect),
                "body_terms": encode(body_terms, dialect),
            }
        )
        if row.active:
            for term in countable(name_terms.split() + body_terms.split()):
                counts[term] = counts.get(term, 0) + 1
    return entries, counts
