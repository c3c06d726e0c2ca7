"""Operator endpoints for admins."""

from __future__ import annotations

from fastapi import APIRouter

from pasar_kit.auth import Admin
from pasar_kit.problems import problems
from pasar_products.audit import audit_stock
from pasar_products.deps import DB
from pasar_products.schemas import StockAudit, ViolationPublic

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/stock-audit",
    operation_id="stock_audit",
    response_model=StockAudit,
    responses=problems(401, 403),
)
async def stock_audit(_admin: Admin, db: DB) -> StockAudit:
    """Check that every product's stock adds up: ledger = stock + held + committed."""
    violations = await audit_stock(db=db)
    return StockAudit(
        ok=not violations,
        violations=[ViolationPublic(**violation.__dict__) for violation in violations],
    )
