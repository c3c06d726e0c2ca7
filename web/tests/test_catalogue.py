"""Browsing: the grid, its filters in the URL, pagination, and a product's page."""

from __future__ import annotations

import re

from web_support import Shop, by_testid, text


async def test_the_catalogue_shows_the_demo_shop_with_prices_in_rupiah(web_shop: Shop) -> None:
    seeded = await web_shop.seed()
    async with web_shop.browser() as browser:
        page = await browser.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    shown = text(page.text)
    assert by_testid(page.text, "result-count") == f"{seeded} products"
    assert "Blus Batik Wanita (M)" in shown  # first by name
    assert "Rp 245,000" in shown  # English groups with commas, no decimals
    # Category navigation carries counts that add up to the whole catalogue.
    counts = [int(n) for n in re.findall(r'class="n">(\d+)<', page.text)]
    assert counts[0] == seeded and sum(counts[1:]) == seeded


async def test_prices_read_the_indonesian_way_by_default(web_shop: Shop) -> None:
    await web_shop.product(name="Kopi Toraja Kalosi", price=92_000)
    async with web_shop.browser(language=None) as browser:
        page = await browser.get("/", q="Toraja")
    assert page.headers["content-language"] == "id"
    assert '<html lang="id">' in page.text
    assert "Rp 92.000" in text(page.text)


async def test_filters_live_in_the_url_and_combine(web_shop: Shop) -> None:
    await web_shop.seed()
    async with web_shop.browser() as browser:
        page = await browser.get(
            "/",
            category="Elektronik",
            min_price="40.000",
            max_price="Rp 300,000",
            in_stock="1",
            sort="-price",
        )
        shown = text(page.text)
        names = re.findall(r'<h2 class="card-title">([^<]+)</h2>', page.text)
    # Elektronik between Rp 40.000 and Rp 300.000, most expensive first.
    assert names == ["Speaker Bluetooth Mini", "Power Bank 10.000 mAh", "Kabel USB-C 1 m"]
    assert "3 products" in shown
    # The current filters are kept by the category links and the pagination.
    assert 'href="/?category=Fashion&amp;min_price=40000&amp;max_price=300000' in page.text
    assert 'aria-current="page">Elektronik' in page.text


async def test_search_and_an_empty_result(web_shop: Shop) -> None:
    await web_shop.seed()
    async with web_shop.browser() as browser:
        found = await browser.get("/", q="kopi")
        nothing = await browser.get("/", q="zzz-tidak-ada")
    names = re.findall(r'<h2 class="card-title">([^<]+)</h2>', found.text)
    # Name or description: palm sugar is sold "for coffee" too.
    assert names == ["Gula Aren Cair 500 ml", "Kopi Arabika Gayo 250 g", "Kopi Toraja Kalosi 250 g"]
    assert 'value="kopi"' in found.text  # the search box keeps what was typed
    assert "No products match your search." in text(nothing.text)


async def test_pages_of_results(web_shop: Shop) -> None:
    seeded = await web_shop.seed()
    async with web_shop.browser() as browser:
        first = await browser.get("/")
        second = await browser.get("/", page="2")
        beyond = await browser.get("/", page="99")
    first_names = re.findall(r'<h2 class="card-title">([^<]+)</h2>', first.text)
    second_names = re.findall(r'<h2 class="card-title">([^<]+)</h2>', second.text)
    assert len(first_names) == 24 and len(second_names) == seeded - 24
    assert not set(first_names) & set(second_names)
    assert 'rel="next" href="/?page=2"' in first.text
    assert 'rel="prev" href="/?page=1"' in second.text
    assert beyond.status_code == 200 and "No products match" in text(beyond.text)


async def test_odd_filter_values_are_ignored_not_errors(web_shop: Shop) -> None:
    await web_shop.seed()
    async with web_shop.browser() as browser:
        page = await browser.get("/", min_price="abc", max_price="", sort="; drop", page="1")
        huge = await browser.get("/", min_price="9" * 40)
    assert page.status_code == 200 and huge.status_code == 200
    assert by_testid(page.text, "result-count") == by_testid(huge.text, "result-count")


async def test_a_product_page_and_an_archived_one(web_shop: Shop) -> None:
    product = await web_shop.product(name="Sambal Roa", stock=3, description="Pedas.\\nEnak.")
    gone = await web_shop.product(name="Teh Lama")
    await web_shop.patch_product(gone["id"], {"active": False})
    async with web_shop.browser() as browser:
        page = await browser.get(f"/products/{product['id']}")
        archived = await browser.get(f"/products/{gone['id']}")
        missing = await browser.get("/products/no-such-product")
    assert page.status_code == 200
    assert by_testid(page.text, "stock-left") == "3 in stock"
    assert "Only 3 left" in text(page.text)
    assert 'action="/cart/items"' in page.text and 'max="3"' in page.text
    assert archived.status_code == 200
    assert "no longer sold" in text(archived.text)
    assert 'action="/cart/items"' not in archived.text
    assert missing.status_code == 404
    assert "We could not find that page" in text(missing.text)
    # An archived product is not in the grid.
    async with web_shop.browser() as browser:
        listing = await browser.get("/", q="Teh Lama")
    assert "card-title" not in listing.text
    assert "No products match your search." in text(listing.text)
