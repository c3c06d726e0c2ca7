"""The pages behind the shop's mail: a forgotten password, a new password from a link,
verifying an email address, asking for the link again, and the mail preferences."""

from __future__ import annotations

import asyncio
import re

from testdata import ADDRESS, PASSWORD
from web_support import Shop, ShopFactory, by_testid, text

NEW_PASSWORD = "kata sandi yang baru sekali"


def _checkout_form(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page))
    return {**fields, **ADDRESS}


async def test_a_forgotten_password_is_replaced_through_the_mailed_link(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register(name="Rina Lupa")
        await browser.submit("/", "/logout")
        login = await browser.get("/login")
        assert 'href="/forgot-password"' in login.text
        asked = await browser.submit("/forgot-password", "/forgot-password", {"email": email})
        assert asked.url.path == "/login"
        assert f"If {email} belongs to an account" in text(asked.text)
        nobody = await browser.submit(
            "/forgot-password", "/forgot-password", {"email": "nobody@example.com"}
        )
        assert "If nobody@example.com belongs to an account" in text(nobody.text)

        token = await web_shop.mailed_token(email, "reset-password")
        form = await browser.get("/reset-password", token=token)
        assert form.status_code == 200
        assert form.headers["referrer-policy"] == "no-referrer"
        assert f'name="token" value="{token}"' in form.text
        short = await browser.submit(
            f"/reset-password?token={token}",
            "/reset-password",
            {"token": token, "new_password": "short"},
        )
        assert short.status_code == 400 and "Use at least 8 characters." in text(short.text)
        done = await browser.submit(
            f"/reset-password?token={token}",
            "/reset-password",
            {"token": token, "new_password": NEW_PASSWORD},
        )
        assert done.url.path == "/login"
        assert "Your new password is set. Log in with it now." in text(done.text)
        again = await browser.submit(
            f"/reset-password?token={token}",
            "/reset-password",
            {"token": token, "new_password": "yet another password"},
        )
        assert again.status_code == 400
        assert "This link no longer works" in text(again.text)
        assert 'href="/forgot-password"' in again.text

        old = await browser.submit("/login", "/login", {"email": email, "password": PASSWORD})
        assert old.status_code == 400
        await browser.login(email, NEW_PASSWORD)
    # No mail goes to an address without an account, and the pages said the same.
    assert await web_shop.mailed_token("nobody@example.com", "reset-password") is None


async def test_the_verification_link_verifies_after_one_tap(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register()
        assert f"We sent a link to {email}" in text(browser.last.text if browser.last else "")
        account = await browser.get("/account")
        assert "is not verified yet" in by_testid(account.text, "unverified")

        token = await web_shop.mailed_token(email, "verify-email")
        page = await browser.get("/verify-email", token=token)
        # Opening the link spends nothing (a mail scanner may open it): one tap does.
        assert "Verify my email" in text(page.text)
        assert page.headers["referrer-policy"] == "no-referrer"
        verified = await browser.submit(
            f"/verify-email?token={token}", "/verify-email", {"token": token}
        )
        assert verified.url.path == "/account"
        assert "Thank you: your email address is verified." in text(verified.text)
        assert 'data-testid="unverified"' not in verified.text

        twice = await browser.submit(
            f"/verify-email?token={token}", "/verify-email", {"token": token}
        )
        assert twice.status_code == 400 and "This link no longer works" in text(twice.text)
        resend = await browser.submit("/account", "/account/verification")
        assert "Your email address is already verified." in text(resend.text)


async def test_the_link_is_sent_again_but_not_too_often(web_shop_factory: ShopFactory) -> None:
    async with (
        web_shop_factory(users_overrides={"verification_resend_seconds": 1}) as shop,
        shop.browser() as browser,
    ):
        email = await browser.register()
        # The registration's mail went a moment ago: asking again at once is too soon.
        soon = await browser.submit("/account", "/account/verification")
        assert "Please wait a little before asking for another one." in text(soon.text)
        first_token = await shop.mailed_token(email, "verify-email")
        await asyncio.sleep(1.1)
        again = await browser.submit("/account", "/account/verification")
        assert f"We sent a new link to {email}" in text(again.text)
        # The newest link works; the one mailed at registration died with it.
        token = await shop.mailed_token(email, "verify-email")
        assert token is not None and token != first_token
        old = await browser.submit(
            f"/verify-email?token={first_token}", "/verify-email", {"token": first_token}
        )
        assert "This link no longer works" in text(old.text)
        verified = await browser.submit(
            f"/verify-email?token={token}", "/verify-email", {"token": token}
        )
        assert "your email address is verified" in text(verified.text)


async def test_order_mail_and_its_language_are_chosen_on_the_account_page(
    web_shop: Shop,
) -> None:
    async with web_shop.browser() as browser:
        email = await browser.register(name="Dewi Hemat")
        page = await browser.get("/account")
        assert re.search(r'name="order_emails" value="on" checked', page.text)
        saved = await browser.submit(
            "/account",
            "/account",
            {"full_name": "Dewi Hemat", "email": email, "language": "en"},
        )
        assert "Your profile is saved." in text(saved.text)
        assert not re.search(r'name="order_emails" value="on" checked', saved.text)
        assert '<option value="en" selected>' in saved.text
    me = await web_shop.me(await web_shop.token(email))
    assert me["order_emails"] is False and me["language"] == "en"


async def test_an_unverified_shopper_hears_why_checkout_refuses(
    web_shop_factory: ShopFactory,
) -> None:
    async with web_shop_factory(orders_overrides={"require_verified_email": True}) as shop:
        kopi = await shop.product(name="Kopi Terverifikasi", stock=5)
        async with shop.browser() as browser:
            await browser.register()
            await browser.add_to_cart(kopi["id"], 1)
            page = await browser.get("/checkout")
            refused = await browser.post("/checkout", _checkout_form(page.text))
            assert "Please verify your email address before ordering" in text(refused.text)
        assert await shop.stock(kopi["id"]) == 5
