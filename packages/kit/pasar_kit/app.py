"""The FastAPI application every service starts from."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pasar_kit.auth import CurrentPrincipal, TokenVerifier
from pasar_kit.db import Database
from pasar_kit.guards import NulGuardMiddleware
from pasar_kit.lifecycle import shutdown
from pasar_kit.middleware import ApiHeadersMiddleware, HeadMiddleware, UploadRoute
from pasar_kit.observability import (
    BodyLimitMiddleware,
    Metrics,
    MetricsMiddleware,
    RequestIdMiddleware,
    UnexpectedErrorMiddleware,
)
from pasar_kit.problems import (
    Forbidden,
    ServiceUnavailable,
    Unauthorized,
    install_problem_handlers,
    problem_response,
    problems,
)
from pasar_kit.tracing import TracingMiddleware

ReadyCheck = Callable[[FastAPI], Awaitable[None]]
ReadyChecks = Sequence[ReadyCheck] | Mapping[str, ReadyCheck]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

log = logging.getLogger("pasar.operations")

INTERNAL_PREFIX = "/internal"
DOCS_ASSETS = "/docs-assets"
# Swagger UI and ReDoc as the fastapi-offline package ships them: /docs and /redoc load
# no script from a CDN, and work on a machine with no internet.
_DOCS_FILES = Path(str(resources.files("fastapi_offline").joinpath("static")))


class ServiceRuntime(Protocol):
    """What a service's ``bootstrap.build_runtime`` gives: its database and token
    verifier, and the start and close of everything it runs."""

    @property
    def db(self) -> Database: ...

    @property
    def verifier(self) -> TokenVerifier: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def runtime_lifespan(build: Callable[[], ServiceRuntime]) -> Lifespan:
    """The lifespan of a service app: the runtime is built when the app starts (so
    nothing connects before), put on ``app.state.runtime``, and closed when it stops.

    The kit's readiness check pings ``app.state.db``; its auth reads
    ``app.state.verifier``: both come from the runtime.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build()
        app.state.runtime = runtime
        app.state.db = runtime.db
        app.state.verifier = runtime.verifier
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    return lifespan


async def _database_ready(app: FastAPI) -> None:
    await app.state.db.ping()


def service_app(
    name: str,
    *,
    title: str,
    description: str,
    lifespan: Lifespan,
    max_body_bytes: int = 1_048_576,
    uploads: Sequence[UploadRoute] = (),
    ready_checks: ReadyChecks | None = None,
    version: str = "0.1.0",
    metrics_token: str | None = None,
) -> FastAPI:
    """A FastAPI app with problem details, request ids, metrics and health endpoints.

    The lifespan must put a ``pasar_kit.db.Database`` on ``app.state.db`` (``/readyz``
    pings it) and a ``TokenVerifier`` on ``app.state.verifier``. ``ready_checks`` are
    named by their mapping key (or their function name); ``metrics_token`` guards
    ``/metrics`` (see ``install_operations``); ``uploads`` are the routes that take a
    file (bigger than ``max_body_bytes``, and binary).

    Routes under ``/internal`` (for other services) are left out of ``/openapi.json`` and
    described in ``/internal/openapi.json``, which, like them, wants a service token.
    """
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        responses=problems(400, 413, 422, 431, 500),
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    metrics = Metrics(name)
    app.state.metrics = metrics
    checks = {"database": _database_ready, **_named(ready_checks)}

    # Added innermost first: the request id (outermost) must exist before anything logs
    # (the request's span takes it as an attribute);
    # metrics see a HEAD as a HEAD; every answer below, refusals included, gets the API
    # headers and loses its body on a HEAD.
    app.add_middleware(NulGuardMiddleware, uploads=uploads)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, uploads=uploads)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(ApiHeadersMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TracingMiddleware)  # so the access line carries the trace id
    app.add_middleware(RequestIdMiddleware)

    install_operations(app, name, metrics=metrics, ready_checks=checks, metrics_token=metrics_token)
    install_documents(app)
    return app


def _named(checks: ReadyChecks | None) -> dict[str, ReadyCheck]:
    if checks is None:
        return {}
    if isinstance(checks, Mapping):
        return dict(checks)
    return {check.__name__.strip("_").removesuffix("_ready"): check for check in checks}


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_operations(
    app: FastAPI,
    name: str,
    *,
    metrics: Metrics,
    ready_checks: ReadyChecks,
    metrics_token: str | None = None,
) -> None:
    """``/healthz``, ``/readyz`` (every check must pass) and ``/metrics`` on ``app``.

    ``/metrics`` says how much traffic each route gets and how often it fails: with
    ``metrics_token`` it wants ``Authorization: Bearer <metrics_token>`` (what a
    Prometheus scrape config sends), without one it answers loopback callers only.
    """
    checks = _named(ready_checks)

    @app.get("/healthz", tags=["operations"], operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": name}

    @app.get(
        "/readyz",
        tags=["operations"],
        operation_id="readyz",
        responses=problems(503),
    )
    async def readyz(request: Request) -> Response:
        """200 only when the database (if any) and the required configuration are usable;
        the 503 names what is down (``checks``), never how the code failed; from the
        shutdown signal on it is always 503, so a balancer stops sending."""
        if shutdown.draining:
            return problem_response(
                ServiceUnavailable("Shutting down.", checks={"shutdown": "draining"})
            )
        states = await _readiness(request.app, checks)
        down = [check_name for check_name, state in states.items() if state == "down"]
        if down:
            detail = f"Not ready: {', '.join(down)} {'is' if len(down) == 1 else 'are'} down."
            return problem_response(ServiceUnavailable(detail, checks=states))
        return JSONResponse({"status": "ready", "service": name, "checks": states})

    expected = f"Bearer {metrics_token}".encode() if metrics_token else None

    @app.get(
        "/metrics",
        tags=["operations"],
        operation_id="metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **problems(401, 403),
        },
    )
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus text format: with the metrics token, or from the loopback when the
        service has none."""
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise Unauthorized("The metrics token is missing or wrong.")
        elif not _is_loopback(request):
            raise Forbidden("Metrics are served to the loopback only; set a metrics token.")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _readiness(app: FastAPI, checks: Mapping[str, ReadyCheck]) -> dict[str, str]:
    """Each check's state, "up" or "down"."""
    states: dict[str, str] = {}
    for check_name, check in checks.items():
        try:
            await check(app)
        except Exception as exc:  # any failure means "not ready"; the log says why
            log.warning("not ready: %s: %s: %s", check_name, type(exc).__name__, exc)
            states[check_name] = "down"
        else:
            states[check_name] = "up"
    return states


def install_documents(app: FastAPI, *, internal_prefix: str = INTERNAL_PREFIX) -> None:
    """The public OpenAPI document and its pages, and the internal one behind a token.

    ``/docs`` (Swagger UI) and ``/redoc`` load their assets from ``/docs-assets`` on the
    service itself.
    """
    cache: dict[str, tuple[int, dict[str, Any]]] = {}

    def is_internal(route: RouteContext) -> bool:
        path = route.path or ""
        return path == internal_prefix or path.startswith(internal_prefix + "/")

    def document(kind: str) -> dict[str, Any]:
        routes = list(iter_route_contexts(app.router.routes))
        cached = cache.get(kind)
        if cached is not None and cached[0] == len(routes):
            return cached[1]
        internal = kind == "internal"
        chosen = [route for route in routes if is_internal(route) == internal]
        built = get_openapi(
            title=app.title + (" (internal API)" if internal else ""),
            version=app.version,
            openapi_version=app.openapi_version,
            description=(
                "Endpoints for other pasar services: every call needs a service token."
                if internal
                else app.description
            ),
            routes=chosen,
            tags=app.openapi_tags,
            servers=app.servers,
            separate_input_output_schemas=app.separate_input_output_schemas,
        )
        cache[kind] = (len(routes), built)
        return built

    def public_openapi() -> dict[str, Any]:
        return document("public")

    app.openapi = public_openapi  # type: ignore[method-assign]

    @app.get(f"{internal_prefix}/openapi.json", include_in_schema=False)
    async def internal_openapi(principal: CurrentPrincipal) -> JSONResponse:
        if not principal.is_service:
            raise Forbidden("The internal API is described to services only.")
        return JSONResponse(document("internal"))

    _install_doc_pages(app)


def _install_doc_pages(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` over the public document, their assets
    served by the service itself."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=_DOCS_FILES), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            # The badge would send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
