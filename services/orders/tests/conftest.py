"""Fixtures for the Order-Service suite; they live in ``orders_support`` so that test
modules can import its helpers by a name no other suite uses."""

from __future__ import annotations

from orders_support import (
    orders_databases,
    orders_shop,
    orders_shop_factory,
)

__all__ = ["orders_databases", "orders_shop", "orders_shop_factory"]
