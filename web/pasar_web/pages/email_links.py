"""The pages the shop's mail links to, and the forms that ask for that mail: verifying an
email address, and choosing a new password when the old one is forgotten.

A link carries its token in the query (``?token=``); the page puts it in a form the
shopper submits, so a mail scanner that opens the link spends nothing. Pages with a token
in their address send no ``Referer`` anywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.datastructures import FormData
from starlette.responses import Response

from pasar_kit.problems import DependencyUnavailable
from pasar_web.api import ApiProblem
from pasar_web.errors import friendly
from pasar_web.forms import Fields
from pasar_web.i18n import gettext as _
from pasar_web.pages.account import client_address
from pasar_web.shell import Page, PageDep

router = APIRouter()

Token = Annotated[str, Query(max_length=200)]
_NO_REFERRER = {"Referrer-Policy": "no-referrer"}


def _token(form: FormData) -> str:
    token = form.get("token")
    return token.strip()[:200] if isinstance(token, str) else ""


@router.get("/forgot-password", name="forgot_password")
async def forgot_form(page: PageDep) -> Response:
    values = {"email": page.session.account.email} if page.session.account else {}
    return await page.render("forgot_password.html", values=values, errors={})


@router.post("/forgot-password")
async def forgot(page: PageDep) -> Response:
    fields = Fields(await page.form())
    email = fields.email()
    message = None
    if fields.ok:
        try:
            await page.services.users.request_password_reset(
                email=email, client_address=client_address(page)
            )
        except ApiProblem as problem:
            message = friendly(problem)
        except DependencyUnavailable:
            page.degraded.add("users")
        else:
            # The same words whether or not the address has an account: nobody learns
            # from this page who shops here.
            return page.redirect(
                "/login",
                _(
                    "If %(email)s belongs to an account, a link to choose a new password "
                    "is on its way. It works for 30 minutes; check the spam folder too.",
                    email=email,
                ),
            )
    return await page.render(
        "forgot_password.html",
        status=503 if page.degraded else 400,
        values=fields.values,
        errors=fields.errors,
        message=message,
    )


@router.get("/reset-password", name="reset_password")
async def reset_form(page: PageDep, token: Token = "") -> Response:
    if not token:
        return page.redirect("/forgot-password")
    return await page.render("reset_password.html", token=token, errors={}, headers=_NO_REFERRER)


@router.post("/reset-password")
async def reset(page: PageDep) -> Response:
    form = await page.form()
    token = _token(form)
    fields = Fields(form)
    new_password = fields.password("new_password", new=True)
    message = None
    if fields.ok and token:
        try:
            await page.services.users.confirm_password_reset(token=token, new_password=new_password)
        except ApiProblem as problem:
            if problem.code == "invalid_token":
                return await _link_expired(page, "reset")
            if problem.status == 422:
                fields.add_service_errors(problem.field_errors())
                message = None if problem.field_errors() else friendly(problem)
            else:
                message = friendly(problem)
        except DependencyUnavailable:
            page.degraded.add("users")
        else:
            # Every login of the account ended with the reset, this browser's too.
            page.session.sign_out()
            return page.redirect("/login", _("Your new password is set. Log in with it now."))
    elif not token:
        return await _link_expired(page, "reset")
    return await page.render(
        "reset_password.html",
        status=503 if page.degraded else 400,
        token=token,
        errors=fields.errors,
        message=message,
        headers=_NO_REFERRER,
    )


@router.get("/verify-email", name="verify_email")
async def verify_form(page: PageDep, token: Token = "") -> Response:
    if not token:
        return page.redirect("/account" if page.signed_in else "/")
    return await page.render("verify_email.html", token=token, headers=_NO_REFERRER)


@router.post("/verify-email")
async def verify(page: PageDep) -> Response:
    token = _token(await page.form())
    if not token:
        return await _link_expired(page, "verify")
    try:
        await page.services.users.verify_email(token)
    except ApiProblem as problem:
        if problem.code == "invalid_token":
            return await _link_expired(page, "verify")
        return await page.render(
            "verify_email.html", status=400, token=token, message=friendly(problem)
        )
    except DependencyUnavailable:
        page.degraded.add("users")
        return await page.render("verify_email.html", status=503, token=token)
    return page.redirect(
        "/account" if page.signed_in else "/login", _("Thank you: your email address is verified.")
    )


@router.post("/account/verification", name="resend_verification")
async def resend_verification(page: PageDep) -> Response:
    await page.form()
    auth = page.auth
    try:
        await page.services.users.resend_verification(auth)
    except ApiProblem as problem:
        if problem.code == "email_already_verified":
            return page.redirect("/account", _("Your email address is already verified."))
        return page.redirect("/account", friendly(problem), "warning")
    except DependencyUnavailable:
        return page.redirect(
            "/account", _("We could not send the link right now. Please try again soon."), "error"
        )
    return page.redirect(
        "/account",
        _(
            "We sent a new link to %(email)s. Open it within 48 hours to verify your address.",
            email=auth.account.email,
        ),
    )


async def _link_expired(page: Page, kind: str) -> Response:
    return await page.render("link_expired.html", status=400, kind=kind, headers=_NO_REFERRER)
