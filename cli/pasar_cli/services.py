"""What the CLI knows about each service: where its app lives and how it is configured."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    port_offset: int
    env_prefix: str
    # The storefront owns no database: nothing to migrate, no *_DATABASE_URL.
    has_database: bool = True

    @property
    def factory(self) -> str:
        """The import string uvicorn calls to build the app."""
        return f"{self.package}.app:create_app"

    @property
    def migrations(self) -> str:
        return f"{self.package}:migrations"

    def settings(self, **overrides: Any) -> Any:
        """The service's Settings, read from its environment prefix."""
        module = importlib.import_module(f"{self.package}.settings")
        settings_class: Callable[..., Any] = module.Settings
        return settings_class(**overrides)


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("web", "pasar_web", 0, "WEB_", has_database=False),
        ServiceSpec("users", "pasar_users", 1, "USERS_"),
        ServiceSpec("products", "pasar_products", 2, "PRODUCTS_"),
        ServiceSpec("orders", "pasar_orders", 3, "ORDERS_"),
    )
}

# Start order: each service comes up after the ones it calls.
START_ORDER = ("users", "products", "orders", "web")
# The services that own a database (migrations, seeding, backups).
DATABASE_SERVICES = tuple(name for name in START_ORDER if SERVICES[name].has_database)


def installed(name: str) -> bool:
    try:
        importlib.import_module(f"{SERVICES[name].package}.app")
    except ModuleNotFoundError:
        return False
    return True
