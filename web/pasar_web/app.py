"""The storefront application factory: pages, the session, languages, error pages."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from jinja2 import Environment
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Scope

from pasar_kit.app import install_operations
from pasar_kit.guards import NulGuardMiddleware
from pasar_kit.middleware import UploadRoute
from pasar_kit.observability import (
    BodyLimitMiddleware,
    Metrics,
    MetricsMiddleware,
    RequestIdMiddleware,
    UnexpectedErrorMiddleware,
)
from pasar_kit.problems import DependencyUnavailable, Problem
from pasar_kit.tracing import TracingMiddleware
from pasar_web import i18n
from pasar_web.api import ApiProblem, Services
from pasar_web.assets import Assets
from pasar_web.auth import Refresher, SignedOut
from pasar_web.errors import friendly
from pasar_web.language import LanguageMiddleware
from pasar_web.pages import (
    account,
    cart,
    catalogue,
    checkout,
    email_links,
    notifications,
    orders,
)
from pasar_web.pages.admin import router as admin_router
from pasar_web.pages.admin.products import IMAGE_UPLOAD_PATH, MULTIPART_OVERHEAD
from pasar_web.security import SecurityHeadersMiddleware
from pasar_web.session import SessionCodec, SessionMiddleware
from pasar_web.settings import Settings
from pasar_web.shell import AdminRequired, FormExpired, LoginRequired, Page, Web, build_templates
from pasar_web.shell import safe_next as _safe_next

log = logging.getLogger("pasar.web")

_SERVICE_NAMES = ("users", "products", "orders")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The storefront; nothing connects until its lifespan starts."""
    settings = settings or Settings()
    zone = ZoneInfo(settings.timezone)
    i18n.load_catalogues()
    assets = Assets()
    templates = build_templates(assets)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.from_settings(settings)
        app.state.web = Web(
            settings=settings,
            services=services,
            refresher=Refresher(services.users),
            assets=assets,
            templates=templates,
            zone=zone,
        )
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="pasar storefront",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    metrics = Metrics("web")
    app.state.metrics = metrics
    _install_middleware(app, settings, templates=templates, zone=zone, metrics=metrics)
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    install_operations(app, "web", metrics=metrics, ready_checks=[], metrics_token=metrics_token)
    _install_error_pages(app)
    _install_shell_routes(app, settings, assets)
    for module in (catalogue, cart, account, email_links, checkout, orders, notifications):
        app.include_router(module.router)
    app.include_router(admin_router)
    return app


def _session_codec(settings: Settings) -> SessionCodec:
    session_secrets = [
        s.get_secret_value()
        for s in [
            *([settings.session_secret] if settings.session_secret else []),
            *settings.previous_session_secrets,
        ]
    ]
    if not session_secrets:
        log.warning("WEB_SESSION_SECRET is not set: sessions end when this process stops")
        session_secrets = [secrets.token_urlsafe(32)]
    return SessionCodec(session_secrets, max_age_seconds=settings.session_max_age_seconds)


def _install_middleware(
    app: FastAPI, settings: Settings, *, templates: Environment, zone: ZoneInfo, metrics: Metrics
) -> None:
    codec = _session_codec(settings)

    def bare_page(status: int) -> Callable[[Scope], Response]:
        # Drawn outside the session and language middleware: a page in both languages.
        html = templates.get_template("error_bare.html").render(status=status)
        return lambda _scope: HTMLResponse(html, status_code=status)

    # Added innermost first. Outermost, the request id exists before anything logs and
    # the security headers cover even the last-resort error page; innermost, the session
    # and the language exist before any page or error page is drawn.
    app.add_middleware(SessionMiddleware, codec=codec, secure=settings.secure_cookies)
    app.add_middleware(LanguageMiddleware, default=settings.default_language, zone=zone)
    # The admin's image upload: a file, bigger than any form, and binary.
    uploads = [
        UploadRoute("POST", IMAGE_UPLOAD_PATH, settings.image_max_bytes + MULTIPART_OVERHEAD)
    ]
    app.add_middleware(NulGuardMiddleware, render=bare_page(422), uploads=uploads)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        render=bare_page(413),
        uploads=uploads,
    )
    app.add_middleware(UnexpectedErrorMiddleware, render=bare_page(500))
    app.add_middleware(
        SecurityHeadersMiddleware,
        image_origins=settings.image_origins,
        https=settings.secure_cookies,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TracingMiddleware)
    app.add_middleware(RequestIdMiddleware)


def _install_shell_routes(app: FastAPI, settings: Settings, assets: Assets) -> None:
    """What every page leans on: static files, the favicon, the language switch."""

    @app.get("/static/{path:path}", include_in_schema=False)
    async def static(request: Request, path: str) -> Response:
        served = assets.respond(request)
        if served is None:
            raise StarletteHTTPException(404)
        return served

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return RedirectResponse(assets.url("favicon.svg"), status_code=301)

    @app.post("/language", include_in_schema=False)
    async def choose_language(
        language: Annotated[str, Form(max_length=5)],
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        response = RedirectResponse(_safe_next(next), status_code=303)
        if language in i18n.LANGUAGES:
            response.set_cookie(
                i18n.LANGUAGE_COOKIE,
                language,
                max_age=365 * 86_400,
                samesite="lax",
                secure=settings.secure_cookies,
            )
        return response


def _install_error_pages(app: FastAPI) -> None:
    """Every failure becomes a page in the shopper's language: never JSON, never a trace."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(SignedOut, _signed_out)
    app.add_exception_handler(AdminRequired, _admin_required)
    app.add_exception_handler(FormExpired, _form_expired)
    app.add_exception_handler(DependencyUnavailable, _unavailable)
    app.add_exception_handler(ApiProblem, _refused)
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)


async def _page_for(request: Request, template: str, status: int, **context: object) -> Response:
    page = Page(request)
    headers = {"Retry-After": "5"} if status == 503 else None
    return await page.render(template, status=status, headers=headers, **context)


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = request.headers.get("referer", "/")
        target = "/" + target.split("/", 3)[-1] if "://" in target else target
    return RedirectResponse(f"/login?next={_quote(_safe_next(target))}", status_code=303)


async def _signed_out(request: Request, _exc: Exception) -> Response:
    request.state.session.flash(
        i18n.gettext("Your session has ended. Please log in again."), "warning"
    )
    return await _login_required(request, _exc)


async def _admin_required(request: Request, _exc: Exception) -> Response:
    return await _page_for(request, "forbidden.html", 403)


async def _form_expired(request: Request, _exc: Exception) -> Response:
    return await _page_for(request, "form_expired.html", 403)


async def _unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DependencyUnavailable)
    service = next((s for s in _SERVICE_NAMES if s in exc.detail), None)
    page = Page(request)
    if service:
        page.degraded.add(service)
    return await page.render("unavailable.html", status=503, headers={"Retry-After": "5"})


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    if exc.status == 404:
        return await _page_for(request, "not_found.html", 404)
    status = exc.status if 400 <= exc.status < 500 else 502
    return await _page_for(request, "error.html", status, message=friendly(exc))


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    message = i18n.gettext("The request could not be handled. Please check what you sent.")
    if exc.status == 413:
        message = i18n.gettext("What you sent is too large.")
    return await _page_for(request, "error.html", exc.status, message=message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return await _page_for(request, "not_found.html", 404)
    if exc.status_code == 405:
        return await _page_for(
            request,
            "error.html",
            405,
            message=i18n.gettext("This page cannot be used that way."),
        )
    return await _page_for(
        request,
        "error.html",
        exc.status_code,
        message=i18n.gettext("The request could not be handled."),
    )


async def _invalid(request: Request, _exc: Exception) -> Response:
    # Only a hand-made URL gets here (forms are checked field by field).
    return await _page_for(request, "not_found.html", 404)


def _quote(value: str) -> str:
    return quote(value, safe="/")
