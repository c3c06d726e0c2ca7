"""RFC 9457 problem details: one exception type per domain failure, one place to render them.

Services subclass ``Problem`` (``class OutOfStock(Problem): status = 409; code =
"out_of_stock"``) and raise it from domain code; ``install_problem_handlers`` turns it,
and every framework error, into ``application/problem+json`` with a stable ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
# A 422 lists this many errors and counts the rest: a body with 60,000 unknown keys must
# not become a 4 MB answer built on the event loop.
MAX_LISTED_ERRORS = 20


class Problem(Exception):
    """A failure the client is told about. Subclasses fix ``status``, ``code`` and ``title``."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"https://pasar.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class BadRequest(Problem):
    status = 400
    code = "bad_request"
    title = "Bad request"


class MalformedJSON(Problem):
    status = 400
    code = "malformed_json"
    title = "Malformed JSON body"


class Unauthorized(Problem):
    status = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(Problem):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(Problem):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(Problem):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(Problem):
    status = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(Problem):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class PayloadTooLarge(Problem):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(Problem):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ValidationFailed(Problem):
    status = 422
    code = "validation_error"
    title = "Invalid request"


class TooManyRequests(Problem):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"


class HeaderFieldsTooLarge(Problem):
    status = 431
    code = "header_fields_too_large"
    title = "Request header fields too large"


class InternalError(Problem):
    status = 500
    code = "internal_error"
    title = "Internal server error"


class DependencyUnavailable(Problem):
    status = 503
    code = "dependency_unavailable"
    title = "A service this request needs is unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 2, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)


class ServiceUnavailable(Problem):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


_BY_STATUS: dict[int, type[Problem]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def validation_problem(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return MalformedJSON("The request body is not valid JSON.")
    listed = errors[:MAX_LISTED_ERRORS]
    detail = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        for err in listed[:5]
    )
    if len(errors) > 5:
        detail += f" (and {len(errors) - 5} more)"
    return ValidationFailed(
        detail or "Invalid request.",
        errors=[
            {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in listed
        ],
        error_count=len(errors),
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path.

    FastAPI makes one route per method, and routes added by ``include_router`` sit behind
    a wrapper that has no path of its own, so the effective routes are asked, not
    ``app.router.routes``. HEAD is served wherever GET is (``HeadMiddleware``).
    """
    path = request.scope["path"]
    exact: set[str] = set()  # routes whose path has no parameter: "/products/suggest"
    templated: set[str] = set()  # "/products/{product_id}", which "suggest" also fits
    for route in iter_route_contexts(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and route.methods and regex.match(path):
            (templated if getattr(route, "param_convertors", None) else exact).update(route.methods)
    # A path spelled out in a route is that resource; a template that also fits it
    # names another one (the spec lists only the former's methods).
    methods = exact or templated
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


# MySQL/MariaDB client errors for a server that cannot be reached or went away.
_MYSQL_UNREACHABLE = {2002, 2003, 2006, 2013}


def database_unreachable(exc: DBAPIError) -> bool:
    """True when the database could not be reached or dropped the connection (a restart,
    a failover), as opposed to a statement that failed."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_UNREACHABLE:
        return True
    return isinstance(orig, OSError) or isinstance(getattr(orig, "__cause__", None), OSError)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, Problem):  # e.g. a body cut off by the size limit
            return problem_response(exc.__cause__)
        kind = _BY_STATUS.get(exc.status_code)
        if kind is None:
            problem: Problem = (
                BadRequest(str(exc.detail)) if exc.status_code < 500 else InternalError()
            )
            response = problem_response(problem)
            response.status_code = exc.status_code
            return response
        detail = exc.detail if isinstance(exc.detail, str) else None
        problem = kind(detail)
        problem.headers.update(exc.headers or {})
        if exc.status_code == 405:
            problem.headers["Allow"] = _allowed_methods(request)
        return problem_response(problem)

    async def on_database(_request: Request, exc: Exception) -> JSONResponse:
        # asyncpg raises a refused connection as it is, not wrapped in a DBAPIError.
        if isinstance(exc, DBAPIError) and not database_unreachable(exc):
            raise exc  # a real fault: the outermost middleware answers 500 and logs it
        # The pool drops its connections on such an error, so a retry gets fresh ones.
        return problem_response(
            ServiceUnavailable(
                "The database is unavailable; please try again.", headers={"Retry-After": "1"}
            )
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(ConnectionError, on_database)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class ProblemModel(BaseModel):
    """The problem details body, for the OpenAPI document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, invalid or expired token",
    402: "Payment declined",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Stale ETag",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Unexpected error",
    503: "A dependency is unavailable",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented as problem+json."""
    return {
        status: {
            "model": ProblemModel,
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemModel"}}},
        }
        for status in statuses
    }
