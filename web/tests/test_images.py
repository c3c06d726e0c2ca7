"""Product pictures: the admin's upload form and buttons, and the pages that show them."""

from __future__ import annotations

import html
import io
import re

import httpx
from PIL import Image
from testdata import PASSWORD
from web_support import ADMIN_EMAIL, Browser, Shop, by_testid, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def png(size: tuple[int, int] = (900, 600), colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def _admin(shop: Shop, browser: Browser) -> None:
    await shop.admin_token()  # makes the admin account
    await browser.login(ADMIN_EMAIL, PASSWORD)


async def _upload(
    browser: Browser,
    product_id: str,
    data: bytes,
    *,
    filename: str = "foto.png",
    main: bool = False,
    csrf: bool = True,
) -> httpx.Response:
    """Post the edit page's upload form as a browser would (multipart, its CSRF token)."""
    page = await browser.client.get(f"/admin/products/{product_id}")
    token = _CSRF.search(page.text)
    assert token is not None
    fields = {"csrf_token": token.group(1)} if csrf else {}
    if main:
        fields["main"] = "1"
    response = await browser.client.post(
        f"/admin/products/{product_id}/images",
        data=fields,
        files={"file": (filename, data, "image/png")},
    )
    if response.status_code == 303:
        response = await browser.client.get(response.headers["location"])
    return response


def _images(page: str) -> list[str]:
    return [html.unescape(tag) for tag in re.findall(r"<img [^>]*>", page)]


async def test_the_admin_uploads_makes_main_and_deletes_pictures(web_shop: Shop) -> None:
    product = await web_shop.product(name="Kopi Bergambar")
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        empty = await browser.get(f"/admin/products/{product['id']}")
        assert "No pictures yet" in text(empty.text)
        assert 'enctype="multipart/form-data"' in empty.text

        first = await _upload(browser, product["id"], png(colour="red"))
        assert first.status_code == 200
        assert "The picture is added." in text(first.text)
        second = await _upload(browser, product["id"], png(colour="blue"))
        assert "The picture is added." in text(second.text)

        answer = await web_shop.http.get(f"{web_shop.products.url}/products/{product['id']}")
        images = answer.json()["images"]
        assert len(images) == 2
        listed = by_testid(second.text, "admin-pictures")
        assert listed.count("Delete") == 2 and listed.count("Make main") == 1
        assert "Main picture" in listed
        assert images[0]["urls"]["thumbnail"] in second.text

        made_main = await browser.submit(
            f"/admin/products/{product['id']}",
            f"/admin/products/{product['id']}/images/{images[1]['id']}/main",
        )
        assert "This is now the main picture." in text(made_main.text)
        after = await web_shop.http.get(f"{web_shop.products.url}/products/{product['id']}")
        assert [image["id"] for image in after.json()["images"]] == [
            images[1]["id"],
            images[0]["id"],
        ]

        deleted = await browser.submit(
            f"/admin/products/{product['id']}",
            f"/admin/products/{product['id']}/images/{images[1]['id']}/delete",
        )
        assert "The picture is deleted." in text(deleted.text)
        gone = await browser.submit(
            f"/admin/products/{product['id']}",
            f"/admin/products/{product['id']}/images/{images[1]['id']}/delete",
        )
        assert "That picture is no longer there." in text(gone.text)
    final = await web_shop.http.get(f"{web_shop.products.url}/products/{product['id']}")
    assert [image["id"] for image in final.json()["images"]] == [images[0]["id"]]


async def test_a_refused_upload_reads_as_a_sentence_in_either_language(web_shop: Shop) -> None:
    product = await web_shop.product(name="Teh Tanpa Gambar")
    for language, unsupported, missing in (
        ("en", "This file is not a picture we can use.", "Choose a picture to upload."),
        ("id", "Berkas ini bukan gambar yang dapat kami gunakan.", "Pilih gambar yang akan"),
    ):
        async with web_shop.browser(language=language) as browser:
            await _admin(web_shop, browser)
            text_file = await _upload(
                browser, product["id"], b"this is not a picture\n", filename="foto.jpg"
            )
            assert text_file.status_code == 200
            assert unsupported in text(text_file.text)
            nothing = await _upload(browser, product["id"], b"", filename="")
            assert missing in text(nothing.text)
    answer = await web_shop.http.get(f"{web_shop.products.url}/products/{product['id']}")
    assert answer.json()["images"] == []


async def test_uploads_need_an_admin_and_the_form_token(web_shop: Shop) -> None:
    product = await web_shop.product(name="Gula Aman")
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        forged = await _upload(browser, product["id"], png(), csrf=False)
        assert forged.status_code == 403
        assert "This form has expired" in text(forged.text)
    async with web_shop.browser() as customer:
        await customer.register()
        refused = await customer.client.post(
            f"/admin/products/{product['id']}/images",
            files={"file": ("a.png", png(), "image/png")},
        )
        assert refused.status_code == 403
    answer = await web_shop.http.get(f"{web_shop.products.url}/products/{product['id']}")
    assert answer.json()["images"] == []


async def test_an_upload_over_the_limit_gets_a_page_not_a_crash(web_shop: Shop) -> None:
    product = await web_shop.product(name="Beras Besar")
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        big = await browser.client.post(
            f"/admin/products/{product['id']}/images",
            content=b"x" * 1024,
            headers={
                "Content-Type": "multipart/form-data; boundary=x",
                "Content-Length": str(64 * 1024 * 1024),
            },
        )
    assert big.status_code == 413
    assert "<html" in big.text.lower()


async def test_the_shop_shows_the_pictures(web_shop: Shop) -> None:
    pictured = await web_shop.product(name="Kopi Bergambar Dua")
    plain = await web_shop.product(name="Kopi Polos")
    main = await web_shop.upload_image(pictured["id"], png((900, 600), "red"))
    other = await web_shop.upload_image(pictured["id"], png((300, 300), "blue"))
    async with web_shop.browser() as browser:
        catalogue = await browser.get("/", q="Kopi")
        product_page = await browser.get(f"/products/{pictured['id']}")
        second = await browser.get(f"/products/{pictured['id']}", image="1")
        plain_page = await browser.get(f"/products/{plain['id']}")

    [card] = [tag for tag in _images(catalogue.text) if main["urls"]["card"] in tag]
    assert f'src="{main["urls"]["card"]}"' in card
    assert f"{main['urls']['card']} 480w, {main['urls']['full']} 900w" in card
    assert 'width="480" height="320"' in card
    assert 'loading="lazy"' in card and 'alt="Kopi Bergambar Dua"' in card
    # The product without a picture keeps its category tile.
    assert catalogue.text.count("tile hue-") >= 1
    assert not [tag for tag in _images(catalogue.text) if 'alt="Kopi Polos"' in tag]

    shown = _images(product_page.text)
    assert any(f'src="{main["urls"]["full"]}"' in tag and 'width="900"' in tag for tag in shown)
    assert f'href="/products/{pictured["id"]}?image=1"' in product_page.text
    assert any(other["urls"]["thumbnail"] in tag for tag in shown)
    assert any(f'src="{other["urls"]["full"]}"' in tag for tag in _images(second.text))
    assert "tile hue-" in plain_page.text and not [
        tag for tag in _images(plain_page.text) if "/images/" in tag
    ]


async def test_the_demo_shop_has_a_picture_for_every_product(web_shop: Shop) -> None:
    seeded = await web_shop.seed()
    async with web_shop.browser() as browser:
        page = await browser.get("/", limit="100")
    cards = [tag for tag in _images(page.text) if "/card.webp" in tag]
    shown_per_page = len(re.findall(r'<li class="card">', page.text))
    assert seeded == 37
    assert shown_per_page > 0 and len(cards) == shown_per_page
