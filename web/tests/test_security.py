"""The session cookie, CSRF tokens, security headers and odd input."""

from __future__ import annotations

import re

from web_support import Shop, text


async def test_every_page_carries_the_security_headers(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        page = await browser.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "private, no-cache"
    # Nothing inline for the policy to forbid: scripts and styles are files.
    assert "<script>" not in page.text and "<style" not in page.text and "style=" not in page.text


async def test_the_session_cookie_is_httponly_lax_and_opaque(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        first = await browser.get("/login")  # a form page starts a session (its CSRF secret)
        email = await browser.register()
        account = await browser.client.get("/account")
    header = str(first.headers["set-cookie"])
    assert header.startswith("pasar_session=")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Max-Age=2592000" in header  # a cart survives a month
    cookie = browser.client.cookies.get("pasar_session")
    assert cookie and email not in cookie and "eyJ" not in cookie  # encrypted: no JWT inside
    assert account.headers["cache-control"] == "no-store"  # signed-in pages stay off disk


async def test_a_forged_or_garbled_cookie_is_a_fresh_visitor(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        browser.client.cookies.set("pasar_session", "gAAAAA-forged", domain="shop.test")
        page = await browser.get("/orders")
        home = await browser.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/orders"
    assert home.status_code == 200


async def test_forms_need_their_csrf_token(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi CSRF")
    async with web_shop.browser() as browser:
        await browser.register()
        missing = await browser.post("/cart/items", {"product_id": kopi["id"], "quantity": "1"})
        wrong = await browser.post(
            "/cart/items", {"product_id": kopi["id"], "quantity": "1", "csrf_token": "guess"}
        )
        found = re.search(r'name="csrf_token" value="([^"]+)"', (await browser.get("/")).text)
        assert found is not None
        csrf = found.group(1)
        cross_site = await browser.client.post(
            "/logout",
            data={"csrf_token": csrf},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        cart = await browser.get("/cart")
    for refused in (missing, wrong, cross_site):
        assert refused.status_code == 403
        assert "This form has expired" in text(refused.text)
    assert "Your cart is empty." in text(cart.text)
    assert 'action="/logout"' in cart.text  # still logged in


async def test_odd_input_gets_a_page_not_a_crash(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        nul = await browser.get("/", q="kopi\x00")
        form = {"content-type": "application/x-www-form-urlencoded"}
        huge = await browser.client.post("/login", content=b"x" * 2_000_000, headers=form)
        weird_path = await browser.get("/products/%E2%80%AE%00")
        bad_form = await browser.client.post("/login", content=b"\xff\xfe=%%%", headers=form)
    assert nul.status_code == 422 and nul.headers["content-type"].startswith("text/html")
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("text/html")
    assert weird_path.status_code in (404, 422)
    assert bad_form.status_code == 403  # no token: refused before anything happens
    for page in (nul, huge, weird_path, bad_form):
        assert "Traceback" not in page.text


async def test_static_files_are_hashed_and_cached_for_a_year(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        page = await browser.get("/")
        css = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', page.text)
        assert css is not None
        first = await browser.client.get(css.group(1), headers={"accept-encoding": "gzip"})
        again = await browser.client.get(
            css.group(1), headers={"if-none-match": first.headers["etag"]}
        )
        stale = await browser.client.get("/static/app.000000000000.css")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert first.headers["content-encoding"] == "gzip" and "--brand" in first.text
    assert again.status_code == 304
    assert stale.status_code == 404


async def test_an_unexpected_error_is_a_page_in_both_languages(web_shop: Shop) -> None:
    @web_shop.web.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug, with secrets in its message")

    async with web_shop.browser() as browser:
        page = await browser.get("/boom")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Maaf, ada yang tidak beres" in page.text and "Sorry, something went wrong" in page.text
    assert "secrets" not in page.text and "Traceback" not in page.text
    assert page.headers["x-request-id"]  # to find the logged traceback
    assert page.headers["content-security-policy"]
