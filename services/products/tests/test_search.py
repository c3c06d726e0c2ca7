"""Search behaviour beyond relevance: filters and sorts with ``q``, stable paging by
relevance, the index kept in step with every write, typo correction, facets against
brute-force counts, suggestions, synonym rules, and odd input."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from products_support import Catalogue, Tokens
from search_support import PRODUCTS, search, skus, stock_shop
from sqlalchemy import func, select

from pasar_kit.db import Database, utcnow
from pasar_products.catalogue import insert_product
from pasar_products.listing import PRICE_BANDS
from pasar_products.tables import product_search, products, search_terms


@pytest.fixture
async def shop(products_catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    return await stock_shop(products_catalogue)


# --- filters, sorts, paging ---------------------------------------------------------


async def test_filters_and_sorts_combine_with_q(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient
) -> None:
    by_price = await search(products_client, "kopi", category="Minuman", sort="price")
    assert skus(by_price) == ["KOPI-SUSU", "KOPI-TORAJA", "KOPI-GAYO", "COFFEE-BEANS"]
    dearest = await search(products_client, "kopi", sort="-price", min_price=90_000)
    assert skus(dearest) == ["COFFEE-BEANS", "KOPI-GAYO", "KOPI-TORAJA"]
    cheap = await search(products_client, "kopi", max_price=50_000, sort="name")
    assert skus(cheap) == ["GULA-AREN", "KOPI-SUSU"]  # by name: "Gula ..." < "Kopi ..."
    assert (await search(products_client, "kopi", category="Buku"))["total"] == 0
    # The default sort stays by name, relevance or not.
    assert skus(await search(products_client, "sepatu")) == [
        "RUNNING-SHOES", "SEPATU-BOLA", "SEPATU-LARI",
    ]  # fmt: skip


async def test_in_stock_filter_with_q(
    shop: dict[str, dict[str, Any]],
    products_catalogue: Catalogue,
    products_client: httpx.AsyncClient,
) -> None:
    gayo = shop["KOPI-GAYO"]["id"]
    emptied = await products_client.post(
        f"/products/{gayo}/stock-adjustments",
        json={"delta": -5, "reason": "habis"},
        headers=products_catalogue.tokens.admin(),
    )
    assert emptied.status_code == 200
    found = skus(await search(products_client, "kopi", in_stock="true"))
    assert "KOPI-GAYO" not in found and "KOPI-TORAJA" in found


async def test_relevance_without_q_sorts_by_name(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient
) -> None:
    plain = await products_client.get("/products", params={"limit": 100})
    relevance = await products_client.get("/products", params={"limit": 100, "sort": "relevance"})
    assert skus(relevance.json()) == skus(plain.json())


@pytest.mark.parametrize("q", ["minuman", "a", "untuk"])
async def test_paging_by_relevance_is_stable(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient, q: str
) -> None:
    whole = await search(products_client, q, sort="relevance")
    assert whole["total"] >= 5
    paged: list[str] = []
    for offset in range(0, whole["total"], 2):
        page = await search(products_client, q, sort="relevance", limit=2, offset=offset)
        assert page["total"] == whole["total"]
        paged += skus(page)
    assert paged == skus(whole)


# --- the index in step with writes ----------------------------------------------------


async def _terms(db: Database, *words: str) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(search_terms.c.term, search_terms.c.products).where(
                search_terms.c.term.in_(words)
            )
        )
        return {str(t): int(n) for t, n in rows.all() if n}


async def test_create_rename_archive_and_restore_keep_the_index_in_step(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient, products_db: Database
) -> None:
    admin = products_catalogue.tokens.admin()
    made = await products_catalogue.product(
        sku="GTR-1", name="Gitar Akustik", description="Senar baja", category="Musik"
    )
    assert skus(await search(products_client, "gitar")) == ["GTR-1"]
    assert skus(await search(products_client, "senar")) == ["GTR-1"]
    assert await _terms(products_db, "gitar", "akustik", "ukulele") == {"gitar": 1, "akustik": 1}

    renamed = await products_client.patch(
        f"/products/{made['id']}", json={"name": "Ukulele Kayu", "sku": "UKU-1"}, headers=admin
    )
    assert renamed.status_code == 200
    assert (await search(products_client, "gitar"))["total"] == 0
    assert (await search(products_client, "gtr"))["total"] == 0
    assert skus(await search(products_client, "ukulele")) == ["UKU-1"]
    assert skus(await search(products_client, "uku-1")) == ["UKU-1"]
    assert await _terms(products_db, "gitar", "akustik", "ukulele") == {"ukulele": 1}

    # A price edit leaves the index as it is.
    repriced = await products_client.patch(
        f"/products/{made['id']}", json={"price": 99}, headers=admin
    )
    assert repriced.status_code == 200
    assert skus(await search(products_client, "ukulele")) == ["UKU-1"]

    archived = await products_client.delete(f"/products/{made['id']}", headers=admin)
    assert archived.status_code == 204
    assert (await search(products_client, "ukulele"))["total"] == 0
    assert await _terms(products_db, "ukulele", "senar") == {}
    admin_view = await products_client.get(
        "/products", params={"q": "ukulele", "include_archived": "true"}, headers=admin
    )
    assert skus(admin_view.json()) == ["UKU-1"]

    restored = await products_client.patch(
        f"/products/{made['id']}", json={"active": True}, headers=admin
    )
    assert restored.status_code == 200
    assert skus(await search(products_client, "ukulele")) == ["UKU-1"]
    assert await _terms(products_db, "ukulele", "senar") == {"ukulele": 1, "senar": 1}


async def test_the_index_entry_is_written_in_the_products_transaction(
    products_db: Database,
) -> None:
    fields = {"sku": "TX-1", "name": "Termos Kopi", "price": 1, "category": "Dapur"}
    with pytest.raises(RuntimeError):
        async with products_db.write() as conn:
            await insert_product(conn, fields=fields, by=None, now=utcnow())
            entries = await conn.scalar(select(func.count()).select_from(product_search))
            assert entries == 1  # there, before the commit
            raise RuntimeError("roll back")
    async with products_db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(products)) == 0
        assert await conn.scalar(select(func.count()).select_from(product_search)) == 0
        assert await conn.scalar(select(func.count()).select_from(search_terms)) == 0


async def test_a_refused_write_leaves_no_index_entry(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient, products_db: Database
) -> None:
    await products_catalogue.product(sku="DUP-1", name="Termos Biru")
    again = await products_client.post(
        "/products",
        json={"sku": "DUP-1", "name": "Termos Merah", "price": 1, "category": "Dapur"},
        headers=products_catalogue.tokens.admin(),
    )
    assert again.status_code == 409
    assert (await search(products_client, "merah"))["total"] == 0
    async with products_db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(product_search)) == 1
    assert await _terms(products_db, "termos", "merah") == {"termos": 1}


# --- typo correction --------------------------------------------------------------------


async def test_a_query_that_matches_is_never_corrected(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient
) -> None:
    page = await search(products_client, "kopi")
    assert page["corrected_q"] is None and page["total"] > 0


@pytest.mark.parametrize(
    "q",
    [
        "zzzzqqq",  # nothing near
        "samsnug zzzzqqq",  # one word has no near spelling: no correction at all
        "xq",  # too short to guess
    ],
)
async def test_no_near_spelling_finds_nothing(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient, q: str
) -> None:
    page = await search(products_client, q)
    assert page == {"items": [], "total": 0, "limit": 100, "offset": 0, "corrected_q": None}


async def test_correction_keeps_filters_and_prefers_the_nearest_word(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient
) -> None:
    page = await search(products_client, "samsnug", category="Elektronik", min_price=4_000_000)
    assert (skus(page), page["corrected_q"]) == (["SAMSUNG-TV"], "samsung")
    # One edit in a short word, two in a longer one.
    assert (await search(products_client, "kopo"))["corrected_q"] == "kopi"
    assert (await search(products_client, "keripk"))["corrected_q"] == "keripik"
    assert (await search(products_client, "rendnag"))["corrected_q"] == "rendang"
    assert (await search(products_client, "kppo"))["corrected_q"] is None  # two edits, short


# --- facets -------------------------------------------------------------------------------


def _brute_facets(
    rows: list[dict[str, Any]], *, category: str | None, min_price: int | None,
    max_price: int | None,
) -> tuple[dict[str, int], list[int], int]:  # fmt: skip
    def priced(row: dict[str, Any]) -> bool:
        return (min_price is None or row["price"] >= min_price) and (
            max_price is None or row["price"] <= max_price
        )

    categories = Counter(row["category"] for row in rows if priced(row))
    in_category = [row for row in rows if category is None or row["category"] == category]
    bands = [
        sum(
            1
            for row in in_category
            if low <= row["price"] and (high is None or row["price"] < high)
        )
        for low, high in PRICE_BANDS
    ]
    total = sum(1 for row in in_category if priced(row))
    return dict(categories), bands, total


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "minuman"},
        {"q": "kopi", "category": "Minuman"},
        {"q": "untuk", "min_price": 25_000, "max_price": 400_000},
        {"category": "Olahraga", "in_stock": "true"},
        {"q": "hp"},
        {"q": "tidak ada"},
    ],
)
async def test_facets_equal_brute_force_counts(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await products_client.get("/products/facets", params=params)
    assert answer.status_code == 200, answer.text
    facets = answer.json()
    # The rows the listing finds for the search alone (no category or price filter).
    unfiltered = {k: v for k, v in params.items() if k in ("q", "in_stock")}
    rows = (await products_client.get("/products", params={"limit": 100, **unfiltered})).json()[
        "items"
    ]
    categories, bands, total = _brute_facets(
        rows,
        category=params.get("category"),
        min_price=params.get("min_price"),
        max_price=params.get("max_price"),
    )
    assert {c["name"]: c["count"] for c in facets["categories"]} == categories
    assert [c["name"] for c in facets["categories"]] == sorted(categories)
    assert [(b["min"], b["max"]) for b in facets["price_bands"]] == list(PRICE_BANDS)
    assert [b["count"] for b in facets["price_bands"]] == bands
    assert facets["total"] == total
    assert facets["corrected_q"] is None
    listed = await products_client.get("/products", params={"limit": 1, **params})
    assert listed.json()["total"] == total


async def test_facets_follow_a_corrected_query(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient
) -> None:
    facets = (await products_client.get("/products/facets", params={"q": "samsnug"})).json()
    assert facets["corrected_q"] == "samsung"
    assert facets["total"] == 2
    assert facets["categories"] == [{"name": "Elektronik", "count": 2}]


# --- suggest ------------------------------------------------------------------------------


async def _suggest(client: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    response = await client.get("/products/suggest", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()]


async def test_suggest_completes_names_best_first(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient
) -> None:
    # Names that start with the text first, shorter ones first; descriptions are not names.
    assert await _suggest(products_client, "kop") == [
        "Kopi Susu Gula Aren", "Kopi Arabika Gayo 250 g", "Kopi Toraja Kalosi 250 g",
    ]  # fmt: skip
    assert await _suggest(products_client, "susu") == [
        "Susu UHT Cokelat 1 L",
        "Kopi Susu Gula Aren",
    ]
    assert await _suggest(products_client, "sepatu l") == ["Sepatu Lari Ringan Pria"]
    assert await _suggest(products_client, "SAMS", limit=1) == ["Samsung Smart TV 43 inci"]
    assert len(await _suggest(products_client, "s", limit=10)) == 10
    assert await _suggest(products_client, "luwak") == []  # archived
    assert await _suggest(products_client, "%") == []
    first = (await products_client.get("/products/suggest", params={"q": "teh ta"})).json()
    assert first == [{"id": shop["TEH-TARIK"]["id"], "name": "Teh Tarik Instan"}]


@pytest.mark.parametrize(
    "params", [{}, {"q": ""}, {"q": "x" * 101}, {"q": "kopi", "limit": 0},
               {"q": "kopi", "limit": 11}, {"q": "a\x00"}],
)  # fmt: skip
async def test_suggest_refuses_bad_parameters(
    products_client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await products_client.get("/products/suggest", params=params)
    assert response.status_code == 422
    assert response.json()["code"] in ("validation_error", "invalid_characters")


# --- synonyms -----------------------------------------------------------------------------


async def test_synonym_rules_crud(
    products_client: httpx.AsyncClient, products_catalogue: Catalogue, products_tokens: Tokens
) -> None:
    admin = products_tokens.admin()
    await products_catalogue.product(sku="PONSEL-1", name="Ponsel Lipat")
    assert (await search(products_client, "hp"))["total"] == 0

    put = await products_client.put(
        "/admin/search/synonyms/HP", json={"expands_to": ["Ponsel", "Handphone", "hp"]},
        headers=admin,
    )  # fmt: skip
    assert put.status_code == 200
    assert put.json() == {"term": "hp", "expands_to": ["ponsel", "handphone"]}
    assert skus(await search(products_client, "hp")) == ["PONSEL-1"]  # no reindex needed

    # Stored as analysed (stemmed): "permainan" is the rule for "main".
    stemmed = await products_client.put(
        "/admin/search/synonyms/permainan", json={"expands_to": ["mainan", "toys"]}, headers=admin
    )
    assert stemmed.json() == {"term": "main", "expands_to": ["toys"]}

    listed = await products_client.get("/admin/search/synonyms", headers=admin)
    assert listed.json() == [
        {"term": "hp", "expands_to": ["ponsel", "handphone"]},
        {"term": "main", "expands_to": ["toys"]},
    ]
    replaced = await products_client.put(
        "/admin/search/synonyms/hp", json={"expands_to": ["handphone"]}, headers=admin
    )
    assert replaced.json() == {"term": "hp", "expands_to": ["handphone"]}
    assert (await search(products_client, "hp"))["total"] == 0

    deleted = await products_client.delete("/admin/search/synonyms/hp", headers=admin)
    assert deleted.status_code == 204
    again = await products_client.delete("/admin/search/synonyms/hp", headers=admin)
    assert (again.status_code, again.json()["code"]) == (404, "synonym_not_found")
    odd = await products_client.delete("/admin/search/synonyms/a%20b", headers=admin)
    assert (odd.status_code, odd.json()["code"]) == (404, "synonym_not_found")
    listed = await products_client.get("/admin/search/synonyms", headers=admin)
    assert [rule["term"] for rule in listed.json()] == ["main"]


@pytest.mark.parametrize(
    ("term", "body"),
    [
        ("hp", {"expands_to": []}),
        ("hp", {"expands_to": ["two words"]}),
        ("hp", {"expands_to": ["a-b"]}),
        ("hp", {"expands_to": "ponsel"}),
        ("hp", {"expands_to": ["x" * 51]}),
        ("hp", {"expands_to": ["ponsel"], "extra": 1}),
        ("two%20words", {"expands_to": ["ponsel"]}),
        ("x" * 51, {"expands_to": ["ponsel"]}),
    ],
)
async def test_synonym_rules_refuse_what_is_not_one_word(
    products_client: httpx.AsyncClient, products_tokens: Tokens, term: str, body: Any
) -> None:
    response = await products_client.put(
        f"/admin/search/synonyms/{term}", json=body, headers=products_tokens.admin()
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/search/synonyms"),
        ("PUT", "/admin/search/synonyms/hp"),
        ("DELETE", "/admin/search/synonyms/hp"),
    ],
)
async def test_synonym_rules_are_for_admins(
    products_client: httpx.AsyncClient, products_tokens: Tokens, method: str, path: str
) -> None:
    body = {"expands_to": ["ponsel"]} if method == "PUT" else None
    anonymous = await products_client.request(method, path, json=body)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    customer = await products_client.request(
        method, path, json=body, headers=products_tokens.customer()
    )
    assert (customer.status_code, customer.json()["code"]) == (403, "forbidden")


# --- odd input ----------------------------------------------------------------------------

ODD_QUERIES = [
    "%", "_", "'", '"', "*", "-", "\\", "AND", "OR", "NOT", "NEAR", "NEAR(kopi teh)",
    "kopi AND teh", "kopi OR", "kopi*", "-kopi", "+kopi", '"kopi', "kopi:*", ":*", "&|!",
    "!kopi", "kopi & teh | !susu", "(kopi", "kopi)", "{name}: kopi", "name_terms : kopi",
    "^kopi", "kopi~2", "@@", "x" * 100, "kopi " * 20, "💥", "kopi 💥", "☕", "...", " - ",
    "'; DROP TABLE products; --", "é", "ÉCLAIR", "ß", "中文", "\u200b", "\ud7ff",
]  # fmt: skip


@pytest.mark.parametrize("q", ODD_QUERIES)
async def test_odd_queries_never_fail(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient, q: str
) -> None:
    await products_catalogue.product(sku="KOPI-1", name="Kopi Teh Susu", description="Kopi")
    asked: list[tuple[str, dict[str, Any]]] = [
        ("/products", {"q": q}),
        ("/products", {"q": q, "sort": "relevance", "offset": 20}),
        ("/products/facets", {"q": q}),
        ("/products/suggest", {"q": q}),
    ]
    for path, params in asked:
        response = await products_client.get(path, params=params)
        assert response.status_code == 200, (path, q, response.text)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("AND", {"OPS"}),  # an operator's name is a word like any other
        ("near", {"OPS"}),
        ("kopi AND teh", {"OPS"}),
        ("kopi OR", {"OPS"}),
        ("NEAR(kopi teh)", {"OPS"}),
        ("kopi*", {"OPS", "KOPI"}),  # "*" is not a wildcard, just a separator
        ("-kopi", {"OPS", "KOPI"}),  # nor "-" a negation
        ("%", {"PCT"}),  # no word at all: matched as a literal substring
        ("100%", {"PCT"}),
        ("'", {"QUOTE"}),
        ('"quote"', {"QUOTE"}),
        ("\\", {"QUOTE"}),
        ("&|!", set()),
        ("☕", set()),
    ],
)
async def test_odd_queries_match_literally_or_nothing(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient, q: str, expected: set[str]
) -> None:
    make = products_catalogue.product
    await make(sku="OPS", name="Kopi AND Teh OR Near Susu", description="Kopi")
    await make(sku="KOPI", name="Kopi Hitam", description="Pahit")
    await make(sku="PCT", name="Diskon 100% Sabun", description="Promo")
    await make(sku="QUOTE", name='It\'s a "quote"', description="back\\slash")
    page = await search(products_client, q)
    assert set(skus(page)) == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize(
    ("q", "sku"),
    [
        ("tv", "TV"), ("a", "KAOS-A"), ("the", "THE"), ("in", "THE"), ("to", "THE"),
        ("of", "THE"), ("hp", "HP"), ("x", "X"), ("5", "X"), ("i", "I"),
    ],
)  # fmt: skip
async def test_short_words_and_stopwords_are_found(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient, q: str, sku: str
) -> None:
    # InnoDB indexes neither words under three letters nor its stopwords by default.
    make = products_catalogue.product
    await make(sku="TV", name="TV LED", description="Layar")
    await make(sku="KAOS-A", name="Kaos Ukuran A", description="Katun")
    await make(sku="THE", name="The Book", description="A story in the voice of one to read")
    await make(sku="HP", name="HP Murah", description="Ponsel")
    await make(sku="X", name="Kipas X 5", description="Angin")
    await make(sku="I", name="Lampu Tipe I", description="Terang")
    found = skus(await search(products_client, q))
    assert sku in found, found
    exact = {p[0] for p in PRODUCTS}
    assert not exact & set(found)
