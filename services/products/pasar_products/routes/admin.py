"""Operator endpoints for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from pasar_kit.auth import Admin
from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import ValidationFailed, problems
from pasar_products.audit import audit_stock
from pasar_products.deps import DatabaseDep, LexiconDep, ListingCacheDep, SettingsDep
from pasar_products.listing import list_low_stock
from pasar_products.problems import SynonymNotFound
from pasar_products.routes.catalogue import public
from pasar_products.schemas import (
    MAX_STOCK,
    ProductPage,
    SearchWord,
    StockAudit,
    SynonymRulePublic,
    SynonymRuleUpdate,
    ViolationPublic,
)
from pasar_products.search import lexicon as synonyms
from pasar_products.search.analysis import stem, words

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


def _analysed(word: str) -> str:
    """A synonym word as queries meet it: folded and stemmed."""
    found = words(word)
    if len(found) != 1:  # e.g. a letter the schema's pattern and ours disagree on
        raise ValidationFailed(f"{word!r} is not one search word.")
    return stem(found[0])


@router.get(
    "/search/synonyms",
    operation_id="list_synonyms",
    response_model=list[SynonymRulePublic],
    responses=problems(401, 403),
)
async def list_synonyms(_admin: Admin, db: DatabaseDep) -> list[SynonymRulePublic]:
    """The synonym rules, by term: a query word ``term`` also matches each of ``expands_to``."""
    return [
        SynonymRulePublic(term=rule.term, expands_to=rule.expands_to)
        for rule in await synonyms.list_synonyms(db=db)
    ]


@router.put(
    "/search/synonyms/{term}",
    operation_id="put_synonym",
    response_model=SynonymRulePublic,
    responses=problems(401, 403, 422),
)
async def put_synonym(
    _admin: Admin,
    term: Annotated[SearchWord, Path(description="One word (letters and digits)")],
    body: SynonymRuleUpdate,
    db: DatabaseDep,
    lexicon: LexiconDep,
    cache: ListingCacheDep,
) -> SynonymRulePublic:
    """Create or replace a one-way rule (a two-way pair is two rules). Both sides are
    stored analysed (lower-case, stemmed), as queries meet them; no reindex is needed."""
    rule = await synonyms.put_synonym(
        db=db, term=_analysed(term), expands_to=[_analysed(word) for word in body.expands_to]
    )
    lexicon.clear()
    cache.clear()
    return SynonymRulePublic(term=rule.term, expands_to=rule.expands_to)


@router.delete(
    "/search/synonyms/{term}",
    operation_id="delete_synonym",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404),
)
async def delete_synonym(
    _admin: Admin, term: str, db: DatabaseDep, lexicon: LexiconDep, cache: ListingCacheDep
) -> Response:
    """Remove the rule for ``term`` (spelled as stored, or as a shopper would type it)."""
    found = words(term)
    if len(found) != 1:
        raise SynonymNotFound("No synonym rule for this term.")
    await synonyms.delete_synonym(db=db, term=stem(found[0]))
    lexicon.clear()
    cache.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
