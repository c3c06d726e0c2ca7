"""What every page shares: the app-wide ``Web``, and ``Page``, one request's view of it.

A page handler takes ``page: PageDep``, calls the services through ``page.services``
(with ``page.auth`` for the signed-in shopper), and answers ``await page.render(...)``
or ``page.redirect(...)``. A service that is down while a page is drawn is noted with
``page.optional(...)``: the page still renders, with a banner naming what is missing.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pasar_kit.problems import DependencyUnavailable
from pasar_web import i18n
from pasar_web.api import ApiProblem, Services
from pasar_web.assets import Assets
from pasar_web.auth import Refresher, ShopperAuth, SignedOut
from pasar_web.session import Session
from pasar_web.settings import Settings

T = TypeVar("T")


class LoginRequired(Exception):
    """A page for signed-in shoppers, asked for by an anonymous visitor."""


class AdminRequired(Exception):
    """An admin page, asked for by a customer."""


class FormExpired(Exception):
    """A form whose CSRF token does not match the session (or a cross-site post)."""


@dataclass
class Web:
    """Everything the pages share, made once per process by ``create_app``."""

    settings: Settings
    services: Services
    refresher: Refresher
    assets: Assets
    templates: Environment
    zone: ZoneInfo


def build_templates(assets: Assets) -> Environment:
    env = Environment(
        loader=PackageLoader("pasar_web", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.template_gettext, i18n.template_ngettext, newstyle=True
    )
    env.globals.update(
        asset=assets.url,
        money=i18n.money,
        number=i18n.number,
        datetime=i18n.local_datetime,
        date=i18n.local_date,
        languages=i18n.LANGUAGES,
        current_language=i18n.current_language,
        url_with=_url_with,
        quote=quote,
    )
    return env


def _url_with(base: str, params: dict[str, Any], **changes: Any) -> str:
    """``base`` with ``params`` updated by ``changes``; empty values are left out."""
    merged = {**params, **changes}
    kept = [(k, str(v)) for k, v in merged.items() if v not in (None, "", False)]
    return f"{base}?{urlencode(kept)}" if kept else base


class Page:
    """One request as a page sees it: the session, the services, and what is missing."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.web: Web = request.app.state.web
        self.session: Session = request.state.session
        self.degraded: set[str] = set()
        self._unread: asyncio.Task[int | None] | None = None

    def count_unread(self) -> None:
        """Ask for the header's unread count now, alongside the page's own calls."""
        if self.session.account is not None and self._unread is None:
            self._unread = asyncio.create_task(self._unread_count())

    @property
    def services(self) -> Services:
        return self.web.services

    @property
    def signed_in(self) -> bool:
        return self.session.account is not None

    @property
    def auth(self) -> ShopperAuth:
        """The signed-in shopper's credentials; an anonymous visitor is sent to log in."""
        if self.session.account is None:
            raise LoginRequired()
        return ShopperAuth(self.session, self.web.refresher)

    def require_admin(self) -> ShopperAuth:
        auth = self.auth
        if not auth.account.is_admin:
            raise AdminRequired()
        return auth

    async def optional(self, service: str, call: Awaitable[T], default: T) -> T:
        """``call``'s answer, or ``default`` (and a banner) when ``service`` is down."""
        try:
            return await call
        except DependencyUnavailable:
            self.degraded.add(service)
            return default

    async def form(self, *, max_files: int = 0) -> FormData:
        """The posted form, once its CSRF token is checked against the session. Only an
        upload's page allows ``max_files``."""
        if self.request.headers.get("sec-fetch-site") == "cross-site":
            raise FormExpired()
        form = await self.request.form(max_files=max_files, max_fields=300)
        given = form.get("csrf_token")
        expected = self.session.csrf
        if not expected or not isinstance(given, str) or not _same(given, expected):
            raise FormExpired()
        return form

    def redirect(self, url: str, message: str | None = None, level: str = "success") -> Response:
        if message:
            self.session.flash(message, level)
        return RedirectResponse(url, status_code=303)

    async def render(
        self,
        template: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        self.count_unread()
        unread = await self._unread if self._unread is not None else None
        account = self.session.account
        context.setdefault("message", None)  # a page's one-line notice, when it has one
        html = self.web.templates.get_template(template).render(
            request=self.request,
            path=self.request.url.path,
            account=account,
            cart_count=sum(self.session.cart.values()),
            unread=unread,
            csrf_token=self.session.csrf_token(),
            flashes=self.session.take_flashes(),
            degraded=sorted(self.degraded),
            settings=self.web.settings,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=headers)

    async def _unread_count(self) -> int | None:
        """Never raises: a count that cannot be had is left out (with a banner)."""
        try:
            return await self.services.users.unread_count(self.auth)
        except DependencyUnavailable:
            self.degraded.add("users")
        except (SignedOut, LoginRequired, ApiProblem):
            pass
        return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def _page(request: Request) -> Page:
    page = Page(request)
    if request.method == "GET":
        page.count_unread()
    return page


PageDep = Annotated[Page, Depends(_page)]


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target from a query string, only if it stays on this site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch in target for ch in "\r\n\t") or "\\" in target:
        return default
    return target
