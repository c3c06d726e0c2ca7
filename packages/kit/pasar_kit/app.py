"""The FastAPI application every service starts from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pasar_kit.guards import NulGuardMiddleware
from pasar_kit.observability import (
    BodyLimitMiddleware,
    Metrics,
    MetricsMiddleware,
    RequestIdMiddleware,
    UnexpectedErrorMiddleware,
)
from pasar_kit.problems import (
    ServiceUnavailable,
    install_problem_handlers,
    problem_response,
    problems,
)

ReadyCheck = Callable[[FastAPI], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


async def _database_ready(app: FastAPI) -> None:
    await app.state.db.ping()


def service_app(
    name: str,
    *,
    title: str,
    description: str,
    lifespan: Lifespan,
    max_body_bytes: int = 1_048_576,
    ready_checks: list[ReadyCheck] | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """A FastAPI app with problem details, request ids, metrics and health endpoints.

    The lifespan must put a ``pasar_kit.db.Database`` on ``app.state.db`` (``/readyz``
    pings it) and a ``TokenVerifier`` on ``app.state.verifier``.
    """
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        responses=problems(400, 413, 422, 500),
    )
    install_problem_handlers(app)
    metrics = Metrics(name)
    app.state.metrics = metrics
    checks = [_database_ready, *(ready_checks or [])]

    # Outermost first: the request id must exist before anything logs.
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)

    install_operations(app, name, metrics=metrics, ready_checks=checks)
    return app


def install_operations(
    app: FastAPI, name: str, *, metrics: Metrics, ready_checks: list[ReadyCheck]
) -> None:
    """``/healthz``, ``/readyz`` (every check must pass) and ``/metrics`` on ``app``."""

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
        """200 only when the database (if any) and the required configuration are usable."""
        for check in ready_checks:
            try:
                await check(request.app)
            except Exception as exc:  # any failure means "not ready", with the reason
                return problem_response(ServiceUnavailable(f"Not ready: {type(exc).__name__}"))
        return JSONResponse({"status": "ready", "service": name})

    @app.get(
        "/metrics",
        tags=["operations"],
        operation_id="metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics_endpoint() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
