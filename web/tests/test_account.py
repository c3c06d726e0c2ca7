"""Registering, logging in and out, the profile, the password, and the cart that follows
the shopper into their account."""

from __future__ import annotations

import asyncio
import secrets

from testdata import PASSWORD
from web_support import Shop, by_testid, text


async def test_register_then_log_out_and_in(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register(name="Budi Santoso")
        home = browser.last
        assert home is not None and "Welcome to the shop, Budi Santoso!" in text(home.text)
        assert 'action="/logout"' in home.text
        out = await browser.submit("/", "/logout")
        assert "You are logged out." in text(out.text)
        assert 'action="/logout"' not in out.text
        back = await browser.login(email)
    assert "Welcome back, Budi Santoso!" in text(back.text)


async def test_wrong_password_and_unknown_email_read_the_same(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register()
        await browser.submit("/", "/logout")
        wrong = await browser.submit(
            "/login", "/login", {"email": email, "password": "salah-sekali"}
        )
        unknown = await browser.submit(
            "/login", "/login", {"email": "nobody@example.com", "password": "salah-sekali"}
        )
        empty = await browser.submit("/login", "/login", {"email": "", "password": ""})
    assert wrong.status_code == unknown.status_code == 400
    assert "The email or password is not right." in text(wrong.text)
    assert "The email or password is not right." in text(unknown.text)
    assert f'value="{email}"' in wrong.text  # the email stays typed in
    assert text(empty.text).count("Please fill this in.") == 2


async def test_registration_problems_are_shown_beside_their_fields(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register()
        await browser.submit("/", "/logout")
        taken = await browser.submit(
            "/register", "/register", {"full_name": "X", "email": email, "password": PASSWORD}
        )
        weak = await browser.submit(
            "/register",
            "/register",
            {"full_name": "", "email": "not-an-email", "password": "short"},
        )
    assert "An account with this email already exists." in text(taken.text)
    shown = text(weak.text)
    assert "Please fill this in." in shown
    assert "Enter an email address like" in shown
    assert "Use at least 8 characters." in shown
    assert 'aria-invalid="true"' in weak.text


async def test_login_sends_the_shopper_back_where_they_were(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register()
        await browser.submit("/", "/logout")
        gate = await browser.client.get("/orders")
        assert gate.status_code == 303 and gate.headers["location"] == "/login?next=/orders"
        page = await browser.client.get("/login?next=/orders")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = await browser.client.post(
            "/login",
            data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/orders"},
        )
        assert response.headers["location"] == "/orders"
    async with web_shop.browser() as stranger:
        # Never to another site.
        evil = await stranger.client.get("/login?next=//evil.example/x")
        sneaky = await stranger.client.get("/login?next=/\\evil.example")
    assert 'name="next" value="/"' in evil.text
    assert 'name="next" value="/"' in sneaky.text


async def test_the_anonymous_cart_joins_the_saved_one_at_login(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Tersimpan")
    teh = await web_shop.product(name="Teh Baru")
    async with web_shop.browser() as phone:
        email = await phone.register()
        await phone.add_to_cart(kopi["id"], 2)  # saved to the account
    async with web_shop.browser() as laptop:
        await laptop.add_to_cart(teh["id"], 1)
        await laptop.add_to_cart(kopi["id"], 1)  # the latest choice wins for kopi
        await laptop.login(email)
        cart = await laptop.get("/cart")
        shown = text(cart.text)
        assert "Kopi Tersimpan" in shown and "Teh Baru" in shown
        assert by_testid(cart.text, "cart-count") == "2 items"
        await laptop.submit("/", "/logout")
        after = await laptop.get("/cart")
        assert "Your cart is empty." in text(after.text)  # nothing left on a shared device
    async with web_shop.browser() as phone_again:
        await phone_again.login(email)
        cart = await phone_again.get("/cart")
    assert by_testid(cart.text, "cart-count") == "2 items"


async def test_logout_revokes_the_refresh_token(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        await browser.register()
        session = _session_of(web_shop, browser)
        assert session.account is not None
        refresh = session.account.refresh_token
        await browser.submit("/", "/logout")
    response = await web_shop.http.post(
        f"{web_shop.users.url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_grant"


async def test_profile_and_password(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register(name="Ani")
        saved = await browser.submit(
            "/account",
            "/account",
            {
                "full_name": "Ani Wijaya",
                "email": email,
                "phone": "+62 811 222",
                "address": "Jl. Kenanga 3",
            },
        )
        assert "Your profile is saved." in text(saved.text)
        assert 'value="Ani Wijaya"' in saved.text and 'value="+62 811 222"' in saved.text
        wrong = await browser.submit(
            "/account",
            "/account/password",
            {"current_password": "bukan-ini-123", "new_password": "kata-sandi-baru-1"},
        )
        assert "Your current password is not right." in text(wrong.text)
        changed = await browser.submit(
            "/account",
            "/account/password",
            {"current_password": PASSWORD, "new_password": "kata-sandi-baru-1"},
        )
        assert "Your password is changed." in text(changed.text)
        still = await browser.get("/account")  # this device stays logged in
        assert still.status_code == 200 and "Ani Wijaya" in still.text
        await browser.submit("/", "/logout")
        await browser.login(email, "kata-sandi-baru-1")


async def test_access_tokens_renew_without_the_shopper_noticing(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        await browser.register()
        session = _session_of(web_shop, browser)
        assert session.account is not None
        first_refresh = session.account.refresh_token
        # The access token is about to expire: the next pages renew it, once, even when
        # the browser asks for several at the same time (rotation would revoke a reuse).
        _expire_access_token(web_shop, browser)
        pages = await asyncio.gather(*(browser.client.get("/orders") for _ in range(5)))
        assert [page.status_code for page in pages] == [200] * 5
        for response in pages:
            browser.client.cookies.update(response.cookies)
        renewed = _session_of(web_shop, browser)
        assert renewed.account is not None and renewed.account.refresh_token != first_refresh
        later = await browser.get("/account")
    assert later.status_code == 200


async def test_a_login_ended_elsewhere_sends_the_shopper_to_log_in(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register()
        session = _session_of(web_shop, browser)
        assert session.account is not None
        # The shopper logs out everywhere (here: their refresh token is revoked).
        await web_shop.http.post(
            f"{web_shop.users.url}/auth/logout",
            json={"refresh_token": session.account.refresh_token},
        )
        _expire_access_token(web_shop, browser)
        response = await browser.client.get("/orders")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=/orders")
        login = await browser.client.get(response.headers["location"])
    assert "Your session has ended. Please log in again." in text(login.text)
    assert email not in login.text


def _codec(shop: Shop):  # type: ignore[no-untyped-def]
    from web_support import SESSION_SECRET

    from pasar_web.session import SessionCodec

    return SessionCodec([SESSION_SECRET], max_age_seconds=3600)


def _session_of(shop: Shop, browser):  # type: ignore[no-untyped-def]
    value = browser.client.cookies.get("pasar_session")
    session = _codec(shop).decode(value)
    assert session is not None
    return session


def _expire_access_token(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    session = _session_of(shop, browser)
    session.account.expires_at = 0
    browser.client.cookies.set("pasar_session", _codec(shop).encode(session), domain="shop.test")


def _unused() -> str:
    return secrets.token_hex(2)
