"""Registering, logging in and out, and the shopper's own profile and password."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from pasar_kit.problems import DependencyUnavailable
from pasar_web import cart
from pasar_web.api import ApiProblem
from pasar_web.auth import account_from
from pasar_web.errors import friendly
from pasar_web.forms import Fields
from pasar_web.i18n import LANGUAGES, current_language, ngettext
from pasar_web.i18n import gettext as _
from pasar_web.models import User
from pasar_web.shell import Page, PageDep, safe_next

router = APIRouter()

Next = Annotated[str | None, Query(max_length=500)]


def client_address(page: Page) -> str | None:
    """The shopper's address, which the services' throttles count (not ours)."""
    client = page.request.client
    return client.host if client else None


async def sign_in(page: Page, email: str, password: str) -> None:
    """Exchange the password for tokens, start the session, and bring the saved cart in.

    Raises ``ApiProblem`` when the User-Service refuses the login.
    """
    services = page.services
    tokens = await services.users.password_grant(
        email=email, password=password, client_address=client_address(page)
    )
    user = await services.users.me_with_token(tokens.access_token)
    anonymous = dict(page.session.cart)
    page.session.sign_in(account_from(tokens, user))
    try:
        saved = await services.orders.saved_cart(page.auth)
    except DependencyUnavailable:
        page.session.flash(
            _("Your saved cart could not be loaded right now; the cart on this device is kept."),
            "warning",
        )
        return
    joined = cart.merge({line.product_id: line.quantity for line in saved.items}, anonymous)
    page.session.set_cart(joined)
    if joined != {line.product_id: line.quantity for line in saved.items}:
        await page.optional("orders", services.orders.save_cart(page.auth, joined), None)


def _login_failure(problem: ApiProblem) -> str:
    if problem.status == 429:
        retry_after = problem.headers.get("Retry-After", problem.headers.get("retry-after", ""))
        seconds = int(retry_after) if retry_after.isdigit() else 60
        if seconds < 60:
            return ngettext(
                "Too many failed attempts. Try again in %(num)s second.",
                "Too many failed attempts. Try again in %(num)s seconds.",
                max(1, seconds),
            )
        return ngettext(
            "Too many failed attempts. Try again in %(num)s minute.",
            "Too many failed attempts. Try again in %(num)s minutes.",
            (seconds + 59) // 60,
        )
    if problem.code in ("invalid_grant", "invalid_request", "unauthorized"):
        return _("The email or password is not right.")
    return friendly(problem)


@router.get("/login", name="login")
async def login_form(page: PageDep, next: Next = None) -> Response:
    if page.signed_in:
        return page.redirect(safe_next(next))
    return await page.render("login.html", next=safe_next(next), values={}, errors={})


@router.post("/login")
async def login(page: PageDep) -> Response:
    form = await page.form()
    fields = Fields(form)
    email = fields.email()
    password = fields.password("password")
    target = safe_next(str(form.get("next", "")))
    if not fields.ok:
        return await _login_again(page, fields, target)
    try:
        await sign_in(page, email, password)
    except ApiProblem as problem:
        return await _login_again(page, fields, target, _login_failure(problem))
    except DependencyUnavailable:
        page.degraded.add("users")
        return await _login_again(page, fields, target, status=503)
    assert page.session.account is not None
    return page.redirect(target, _("Welcome back, %(name)s!", name=page.session.account.name))


async def _login_again(
    page: Page, fields: Fields, target: str, message: str | None = None, status: int = 400
) -> Response:
    return await page.render(
        "login.html",
        status=status,
        next=target,
        values={"email": fields.values.get("email", "")},
        errors=fields.errors,
        message=message,
    )


@router.get("/register", name="register")
async def register_form(page: PageDep, next: Next = None) -> Response:
    if page.signed_in:
        return page.redirect(safe_next(next))
    return await page.render("register.html", next=safe_next(next), values={}, errors={})


@router.post("/register")
async def register(page: PageDep) -> Response:
    form = await page.form()
    fields = Fields(form)
    full_name = fields.text("full_name", max_length=200)
    email = fields.email()
    password = fields.password("password", new=True)
    target = safe_next(str(form.get("next", "")))
    message = None
    if fields.ok:
        try:
            await page.services.users.register(
                email=email,
                password=password,
                full_name=full_name,
                language=current_language(),
                client_address=client_address(page),
            )
            await sign_in(page, email, password)
        except ApiProblem as problem:
            if problem.code == "email_taken":
                fields.errors["email"] = friendly(problem)
            elif problem.status == 422:
                fields.add_service_errors(problem.field_errors())
                message = friendly(problem) if not problem.field_errors() else None
            else:
                message = friendly(problem)
        except DependencyUnavailable:
            page.degraded.add("users")
        else:
            return page.redirect(
                target,
                _(
                    "Welcome to the shop, %(name)s! We sent a link to %(email)s: open it to "
                    "confirm your email address.",
                    name=full_name,
                    email=email,
                ),
            )
    return await page.render(
        "register.html",
        status=503 if page.degraded else 400,
        next=target,
        values={"full_name": full_name, "email": email},
        errors=fields.errors,
        message=message,
    )


@router.post("/logout", name="logout")
async def logout(page: PageDep) -> Response:
    await page.form()
    account = page.session.account
    if account is not None:
        # The refresh token must stop working even if this cookie was copied somewhere.
        await page.optional("users", page.services.users.logout(account.refresh_token), None)
    page.session.sign_out()
    return page.redirect("/", _("You are logged out. Sampai jumpa!"))


@router.get("/account", name="account")
async def account_page(page: PageDep) -> Response:
    user = await page.services.users.me(page.auth)
    return await page.render(
        "account.html", user=user, values=_profile_values(user), errors={}, password_errors={}
    )


def _profile_values(user: User) -> dict[str, str]:
    return {
        "full_name": user.full_name,
        "email": user.email,
        "phone": user.phone or "",
        "address": user.address or "",
        "order_emails": "on" if user.order_emails else "",
        "language": user.language,
    }


@router.post("/account")
async def update_account(page: PageDep) -> Response:
    form = await page.form()
    auth = page.auth
    fields = Fields(form)
    full_name = fields.text("full_name", max_length=200)
    email = fields.email()
    phone = fields.text("phone", required=False, max_length=32)
    address = fields.text("address", required=False, max_length=500)
    order_emails = form.get("order_emails") == "on"
    language = form.get("language")
    fields.values["order_emails"] = "on" if order_emails else ""
    changes: dict[str, Any] = {
        "full_name": full_name,
        "phone": phone or None,
        "address": address or None,
        "order_emails": order_emails,
    }
    if language in LANGUAGES:
        changes["language"] = fields.values["language"] = language
    if email != auth.account.email:
        changes["email"] = email
        changes["current_password"] = fields.password("current_password")
    message = None
    if fields.ok:
        try:
            updated = await page.services.users.update_me(auth, changes)
        except ApiProblem as problem:
            if problem.code == "email_taken":
                fields.errors["email"] = friendly(problem)
            elif problem.code == "wrong_password":
                fields.errors["current_password"] = friendly(problem)
            elif problem.status == 422:
                fields.add_service_errors(problem.field_errors())
            else:
                message = friendly(problem)
        else:
            auth.account.name = updated.full_name
            auth.account.email = updated.email
            page.session.changed = True
            return page.redirect("/account", _("Your profile is saved."))
    user = None  # for the verification notice, when the profile can be had
    with contextlib.suppress(ApiProblem, DependencyUnavailable):
        user = await page.services.users.me(auth)
    return await page.render(
        "account.html",
        status=400,
        user=user,
        values=fields.values,
        errors=fields.errors,
        password_errors={},
        message=message,
    )


@router.post("/account/password", name="change_password")
async def change_password(page: PageDep) -> Response:
    form = await page.form()
    auth = page.auth
    fields = Fields(form)
    current = fields.password("current_password")
    new = fields.password("new_password", new=True)
    if fields.ok and current == new:
        fields.errors["new_password"] = _("Choose a password different from the current one.")
    message = None
    if fields.ok:
        try:
            await page.services.users.change_password(auth, current=current, new=new)
        except ApiProblem as problem:
            if problem.code == "wrong_password":
                fields.errors["current_password"] = friendly(problem)
            else:
                message = friendly(problem)
        else:
            # Every login of the account ends with the change, this one too: start a new one.
            email = auth.account.email
            cart_kept = dict(page.session.cart)
            await sign_in(page, email, new)
            page.session.set_cart({**page.session.cart, **cart_kept})
            return page.redirect("/account", _("Your password is changed."))
    user = await page.services.users.me(auth)
    return await page.render(
        "account.html",
        status=400,
        user=user,
        values=_profile_values(user),
        errors={},
        password_errors=fields.errors,
        message=message,
    )
