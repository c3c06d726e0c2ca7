"""docs/api.md cannot drift from the services: every route a service serves is described
there, in that service's section, and every route described there is served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from pasar_orders.app import create_app as create_orders
from pasar_orders.settings import Settings as OrdersSettings
from pasar_products.app import create_app as create_products
from pasar_products.settings import Settings as ProductsSettings
from pasar_users.app import create_app as create_users
from pasar_users.settings import Settings as UsersSettings

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECTIONS = {"users": "User-Service", "products": "Product-Service", "orders": "Order-Service"}
# `GET /path` as the first cell of a table row (several per cell are allowed).
_ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")
# Served for the docs viewers only: their assets, not part of any API.
_NOT_API = {"/docs-assets"}


def _apps() -> dict[str, FastAPI]:
    return {
        "users": create_users(UsersSettings(environment="test")),
        "products": create_products(ProductsSettings(environment="test")),
        "orders": create_orders(OrdersSettings(environment="test", client_secret="s" * 24)),
    }


def _served(app: FastAPI) -> set[str]:
    routes = set()
    for route in iter_route_contexts(app.router.routes):
        # A converter (`{key:path}`) is how the route matches, not part of its address.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", getattr(route, "path", ""))
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD" and path not in _NOT_API:
                routes.add(f"{method} {path}")
    return routes


def _described(text: str) -> set[str]:
    routes = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            routes |= {f"{method} {path}" for method, path in _ROUTE.findall(first_cell)}
    return routes


def _sections() -> tuple[str, dict[str, str]]:
    """The conventions (routes every service serves) and each service's own section."""
    parts = re.split(r"^## ", API_DOC.read_text(), flags=re.MULTILINE)
    common = next(part for part in parts if part.startswith("1. Conventions"))
    own = {
        service: next(part for part in parts if title in part.splitlines()[0])
        for service, title in SECTIONS.items()
    }
    return common, own


@pytest.mark.parametrize("service", list(SECTIONS))
def test_every_served_route_is_described_and_every_described_route_served(service: str) -> None:
    common, own = _sections()
    described = _described(common) | _described(own[service])
    served = _served(_apps()[service])
    assert served - described == set(), "served but not in docs/api.md"
    assert described - served == set(), "in docs/api.md but not served"
