"""The public listing: every filter, search taken literally, sorting, paging, categories."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from products_support import Catalogue, Tokens


async def _list(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/products", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _skus(page: dict[str, Any]) -> list[str]:
    return [p["sku"] for p in page["items"]]


@pytest.fixture
async def shop(products_catalogue: Catalogue) -> Catalogue:
    make = products_catalogue.product
    await make(sku="KOPI-1", name="Kopi Gayo", price=85_000_00, stock=5, category="Minuman",
               description="Arabika dari Aceh")  # fmt: skip
    await make(sku="TEH-1", name="teh melati", price=12_500_00, stock=0, category="Minuman",
               description="Teh hijau wangi")  # fmt: skip
    await make(sku="SAMBAL-1", name="Sambal Bawang", price=28_000_00, stock=9, category="Makanan",
               description="Pedas 100%")  # fmt: skip
    await make(sku="RAKET-1", name="Raket Badminton", price=365_000_00, stock=2,
               category="Olahraga", description="Karbon_ringan")  # fmt: skip
    await make(sku="QUOTE-1", name="It's a \"quote\"", price=1_000_00, stock=1,
               category="Lain", description="back\\slash")  # fmt: skip
    archived = await make(sku="KOPI-OLD", name="Kopi Lama", price=1, stock=1, category="Minuman")
    response = await products_catalogue.client.delete(
        f"/products/{archived['id']}", headers=products_catalogue.tokens.admin()
    )
    assert response.status_code == 204
    return products_catalogue


async def test_default_list_is_active_products_by_name(
    shop: Catalogue, products_client: httpx.AsyncClient
) -> None:
    page = await _list(products_client)
    assert page["total"] == 5 and page["limit"] == 20 and page["offset"] == 0
    names = [p["name"] for p in page["items"]]
    assert [n.lower() for n in names] == sorted(n.lower() for n in names)
    assert "KOPI-OLD" not in _skus(page)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("kopi", {"KOPI-1"}),  # name, case-insensitive
        ("TEH MELATI", {"TEH-1"}),
        ("aceh", {"KOPI-1"}),  # description
        ("sambal-1", {"SAMBAL-1"}),  # sku
        ("%", {"SAMBAL-1"}),  # literal percent sign, not a wildcard
        ("100%", {"SAMBAL-1"}),
        ("_", {"RAKET-1"}),  # literal underscore
        ("karbon_ringan", {"RAKET-1"}),  # "_" separates words, as in the text
        ("\\", {"QUOTE-1"}),  # literal backslash
        ("'", {"QUOTE-1"}),
        ('"quote"', {"QUOTE-1"}),
        ("' OR 1=1 --", set()),
        ("lama", set()),  # archived products are not searchable
        ("nothing like this", set()),
    ],
)
async def test_search_matches_text_literally(
    shop: Catalogue, products_client: httpx.AsyncClient, q: str, expected: set[str]
) -> None:
    page = await _list(products_client, q=q)
    assert set(_skus(page)) == expected
    assert page["total"] == len(expected)


async def test_filters_combine(shop: Catalogue, products_client: httpx.AsyncClient) -> None:
    assert set(_skus(await _list(products_client, category="Minuman"))) == {"KOPI-1", "TEH-1"}
    assert set(_skus(await _list(products_client, category="Minuman", in_stock="true"))) == {
        "KOPI-1"
    }
    assert set(_skus(await _list(products_client, in_stock="false"))) == {
        "KOPI-1", "TEH-1", "SAMBAL-1", "RAKET-1", "QUOTE-1",
    }  # fmt: skip
    priced = await _list(products_client, min_price=12_500_00, max_price=85_000_00)
    assert set(_skus(priced)) == {"KOPI-1", "TEH-1", "SAMBAL-1"}
    assert _skus(await _list(products_client, min_price=100_000_00)) == ["RAKET-1"]
    assert _skus(await _list(products_client, max_price=1_000_00)) == ["QUOTE-1"]
    assert (await _list(products_client, category="Nope"))["total"] == 0
    assert set(_skus(await _list(products_client, q="ba", category="Makanan"))) == {"SAMBAL-1"}


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("name", "name", False),
        ("-name", "name", True),
        ("price", "price", False),
        ("-price", "price", True),
        ("created_at", "created_at", False),
        ("-created_at", "created_at", True),
    ],
)
async def test_sorting(
    shop: Catalogue, products_client: httpx.AsyncClient, sort: str, key: str, reverse: bool
) -> None:
    items = (await _list(products_client, sort=sort))["items"]
    values = [item[key].lower() if key == "name" else item[key] for item in items]
    assert values == sorted(values, reverse=reverse)


async def test_pages_cover_everything_once_with_the_total(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient
) -> None:
    for i in range(7):
        await products_catalogue.product(name="Same name", price=100 * (i % 3))
    for sort in ("name", "-price", "created_at"):
        seen: list[str] = []
        for offset in range(0, 8, 3):
            page = await _list(products_client, sort=sort, limit=3, offset=offset)
            assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == offset
            seen += [p["id"] for p in page["items"]]
        assert len(seen) == 7 and len(set(seen)) == 7
    beyond = await _list(products_client, offset=50)
    assert beyond["items"] == [] and beyond["total"] == 7


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"offset": 10**25},
        {"sort": "stock"},
        {"sort": "name; DROP TABLE products"},
        {"min_price": -1},
        {"max_price": "cheap"},
        {"in_stock": "maybe"},
        {"q": "x" * 101},
    ],
)
async def test_bad_parameters_are_422(
    products_client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await products_client.get("/products", params=params)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_limit_100_is_allowed(products_client: httpx.AsyncClient) -> None:
    assert (await _list(products_client, limit=100))["limit"] == 100


async def test_categories_count_active_products(
    shop: Catalogue, products_client: httpx.AsyncClient
) -> None:
    response = await products_client.get("/categories")
    assert response.status_code == 200
    assert response.json() == [
        {"name": "Lain", "product_count": 1},
        {"name": "Makanan", "product_count": 1},
        {"name": "Minuman", "product_count": 2},  # the archived one is not counted
        {"name": "Olahraga", "product_count": 1},
    ]


def test_totals_cache_keys_on_filters_only() -> None:
    from pasar_products.listing import ProductQuery, TotalsCache

    cache = TotalsCache(60)
    cache.put(ProductQuery(q="kopi", sort="-price", limit=5, offset=10), 42)
    assert cache.get(ProductQuery(q="kopi")) == 42  # same filters, other page
    assert cache.get(ProductQuery(q="kopi", in_stock=True)) is None
    cache.clear()
    assert cache.get(ProductQuery(q="kopi")) is None

    disabled = TotalsCache(0)
    disabled.put(ProductQuery(), 1)
    assert disabled.get(ProductQuery()) is None

    small = TotalsCache(60, max_entries=2)
    for n in range(3):
        small.put(ProductQuery(category=str(n)), n)
    assert small.get(ProductQuery(category="0")) is None
    assert small.get(ProductQuery(category="2")) == 2


async def test_a_write_through_this_service_shows_in_the_next_total(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient
) -> None:
    await products_catalogue.product(category="Fresh")
    assert (await _list(products_client, category="Fresh", limit=1))["total"] == 1
    await products_catalogue.product(category="Fresh")
    assert (await _list(products_client, category="Fresh", limit=1))["total"] == 2


async def test_an_anonymous_page_is_kept_a_moment_and_dropped_by_an_admin_change(
    products_catalogue: Catalogue, products_client: httpx.AsyncClient
) -> None:
    product = await products_catalogue.product(category="Kept", stock=5)
    first = await products_client.get("/products", params={"category": "Kept"})
    # A reservation moves stock behind the page's back: the kept page still says 5...
    assert (await products_catalogue.reserve([(product["id"], 2)])).status_code == 201
    again = await products_client.get("/products", params={"category": "Kept"})
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    # ...while the product's own page never lags,
    assert await products_catalogue.stock(product["id"]) == 3
    # and an admin's change through this process drops the kept pages at once.
    response = await products_client.patch(
        f"/products/{product['id']}",
        json={"name": "Renamed"},
        headers=products_catalogue.tokens.admin(),
    )
    assert response.status_code == 200
    fresh = (await _list(products_client, category="Kept"))["items"]
    assert [(p["name"], p["stock"]) for p in fresh] == [("Renamed", 3)]


def test_the_page_cache_keys_on_the_whole_query() -> None:
    from pasar_products.listing import PageCache, ProductQuery

    pages = PageCache(60)
    pages.put(ProductQuery(q="kopi"), b"page one")
    assert pages.get(ProductQuery(q="kopi")) == b"page one"
    assert pages.get(ProductQuery(q="kopi", offset=20)) is None
    assert pages.get(ProductQuery(q="kopi", sort="-price")) is None
    disabled = PageCache(0)
    disabled.put(ProductQuery(), b"x")
    assert disabled.get(ProductQuery()) is None


async def test_admins_may_list_archived_products_too(
    shop: Catalogue, products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    params = {"include_archived": "true", "q": "kopi"}
    anonymous = await products_client.get("/products", params=params)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    customer = await products_client.get(
        "/products", params=params, headers=products_tokens.customer()
    )
    assert customer.status_code == 403
    service = await products_client.get(
        "/products", params=params, headers=products_tokens.service()
    )
    assert service.status_code == 403
    admin = await products_client.get("/products", params=params, headers=products_tokens.admin())
    assert admin.status_code == 200
    assert {(p["sku"], p["active"]) for p in admin.json()["items"]} == {
        ("KOPI-1", True),
        ("KOPI-OLD", False),
    }
    assert admin.json()["total"] == 2
    plain = await products_client.get(
        "/products", params={"include_archived": "false", "q": "kopi"}
    )
    assert _skus(plain.json()) == ["KOPI-1"]
