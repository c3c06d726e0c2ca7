"""Operator endpoints for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pasar_kit.auth import Admin
from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import problems
from pasar_products.audit import audit_stock
from pasar_products.deps import DatabaseDep, SettingsDep
from pasar_products.listing import list_low_stock
from pasar_products.routes.catalogue import public
from pasar_products.schemas import MAX_STOCK, ProductPage, StockAudit, ViolationPublic

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/stock-audit",
    operation_id="stock_audit",
    response_model=StockAudit,
    responses=problems(401, 403),
)
async def stock_audit(_admin: Admin, db: DatabaseDep) -> StockAudit:
    """Check that every product's stock adds up: ledger = stock + held + committed."""
    violations = await audit_stock(db=db)
    return StockAudit(
        ok=not violations,
        violations=[ViolationPublic(**violation.__dict__) for violation in violations],
    )


@router.get(
    "/low-stock",
    operation_id="low_stock",
    response_model=ProductPage,
    responses=problems(401, 403, 422),
)
async def low_stock(
    _admin: Admin,
    db: DatabaseDep,
    settings: SettingsDep,
    threshold: Annotated[
        int, Query(ge=0, le=MAX_STOCK, description="Products with at most this much stock")
    ] = 5,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ProductPage:
    """Active products running out, emptiest first (then by name), to restock."""
    rows, total = await list_low_stock(db=db, threshold=threshold, limit=limit, offset=offset)
    return ProductPage(
        items=[public(row, settings) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
