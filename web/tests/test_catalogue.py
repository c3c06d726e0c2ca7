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
    categories = page.text.split('class="categories"', 1)[1].split("</nav>", 1)[0]
    counts = [int(n) for n in re.findall(r'class="n">(\d+)<', categories)]
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
    # Name or description, best match first: palm sugar is sold "for coffee" too, but
    # coffee in the name comes first.
    assert sorted(names[:2]) == ["Kopi Arabika Gayo 250 g", "Kopi Toraja Kalosi 250 g"]
    assert names[2:] == ["Gula Aren Cair 500 ml"]
    assert 'value="relevance" selected' in found.text
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


async def test_a_misspelt_search_shows_what_was_meant(web_shop: Shop) -> None:
    await web_shop.seed()
    async with web_shop.browser() as browser:
        page = await browser.get("/", q="sambel")  # the shop sells sambal
    names = re.findall(r'<h2 class="card-title">([^<]+)</h2>', page.text)
    assert "Sambal Bawang Pedas 200 g" in names
    assert by_testid(page.text, "corrected") == (
        "Nothing matches “sambel”. Showing results for “sambal”."
    )


async def test_price_bands_count_the_search_and_filter_by_a_click(web_shop: Shop) -> None:
    for price in (10_000, 20_000, 60_000, 2_000_000):
        await web_shop.product(name=f"Kopi Uji {price}", price=price, category="Kopi Uji")
    async with web_shop.browser() as browser:
        page = await browser.get("/", q="kopi uji")
        bands = page.text.split('class="categories price-bands"', 1)[1].split("</nav>", 1)[0]
        shown = text(bands)
        assert "Under Rp 25,000 2" in shown
        assert "Rp 50,000 \u2013 Rp 100,000 1" in shown
        assert "Rp 1,000,000 and above 1" in shown
        assert "Rp 25,000 \u2013 Rp 50,000" not in shown  # an empty band is not offered
        link = re.search(r'href="([^"]*max_price=24999[^"]*)"', bands)
        assert link is not None
        cheap = await browser.get(link.group(1).replace("&amp;", "&"))
    names = re.findall(r'<h2 class="card-title">([^<]+)</h2>', cheap.text)
    assert sorted(names) == ["Kopi Uji 10000", "Kopi Uji 20000"]
    assert 'aria-current="true"' in cheap.text  # the band in use, a click away from off


async def test_the_search_box_suggests_product_names(web_shop: Shop) -> None:
    await web_shop.seed()
    async with web_shop.browser() as browser:
        found = await browser.get("/suggest", q="kop")
        nothing = await browser.get("/suggest", q="   ")
    assert found.status_code == 200
    names = [entry["name"] for entry in found.json()]
    assert names and all(name.lower().startswith("kopi") for name in names)
    assert nothing.json() == []
