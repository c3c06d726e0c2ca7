"""Fixtures for the storefront's page tests (they live in ``web_support``)."""

from __future__ import annotations

from web_support import web_databases, web_shop, web_shop_factory

__all__ = ["web_databases", "web_shop", "web_shop_factory"]
