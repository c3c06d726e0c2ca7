"""The catalogue: public reads, admin writes and stock adjustments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import TypeAdapter

from pasar_kit.auth import Admin
from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import problems
from pasar_products import catalogue, listing
from pasar_products.catalogue import Product
from pasar_products.deps import (
    DatabaseDep,
    IncludeArchived,
    LexiconDep,
    ListingCacheDep,
    Now,
    ProductId,
    SettingsDep,
)
from pasar_products.images import StoredImage, urls_of
from pasar_products.listing import ProductQuery, Sort
from pasar_products.schemas import (
    MAX_MONEY,
    NO_NUL,
    CategoryCount,
    CategoryFacet,
    ImagePublic,
    ImageUrls,
    PriceBandFacet,
    ProductCreate,
    ProductFacets,
    ProductPage,
    ProductPublic,
    ProductUpdate,
    StockAdjustmentCreate,
    StockAdjustmentPage,
    StockAdjustmentPublic,
    Suggestion,
)
from pasar_products.search.suggest import suggest
from pasar_products.settings import Settings

router = APIRouter(tags=["products"])

IfMatch = Annotated[
    str | None,
    Header(description="An ETag from a previous read; the change is refused (412) if stale."),
]


def image_public(image: StoredImage, settings: Settings) -> ImagePublic:
    return ImagePublic(
        id=image.id,
        position=image.position,
        main=image.main,
        width=image.width,
        height=image.height,
        urls=ImageUrls(**urls_of(image, settings.public_url)),
    )


def public(product: Product, settings: Settings) -> ProductPublic:
    images = [image_public(image, settings) for image in product.images]
    return ProductPublic(
        id=product.id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        price=product.price,
        currency=settings.currency,
        stock=product.stock,
        category=product.category,
        # An uploaded main image wins over a URL given by hand.
        image_url=images[0].urls.full if images else product.image_url,
        images=images,
        active=product.active,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


Q = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=NO_NUL,
        description="Search: every word must match the name, SKU, category or description "
        "(by word, Indonesian stem or synonym; the last word may be a prefix)",
    ),
]
CategoryFilter = Annotated[str | None, Query(max_length=100, pattern=NO_NUL)]
MinPrice = Annotated[int | None, Query(ge=0, le=MAX_MONEY)]
MaxPrice = Annotated[int | None, Query(ge=0, le=MAX_MONEY)]
InStock = Annotated[bool, Query(description="true: only products with stock")]


@router.get(
    "/products",
    operation_id="list_products",
    response_model=ProductPage,
    responses=problems(401, 403, 422),
)
async def list_products(
    db: DatabaseDep,
    settings: SettingsDep,
    cache: ListingCacheDep,
    lexicon: LexiconDep,
    include_archived: IncludeArchived,
    q: Q = None,
    category: CategoryFilter = None,
    min_price: MinPrice = None,
    max_price: MaxPrice = None,
    in_stock: InStock = False,
    sort: Annotated[
        Sort, Query(description="relevance: best match first (as name without q)")
    ] = "name",
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response:
    """Active products, filtered, searched, sorted and paged (archived too for admins)."""
    query = ProductQuery(
        q=q.strip() if q else None,
        category=category,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        include_archived=include_archived,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    # The anonymous page as sent a moment ago (admins' archived view is never kept).
    cached = None if include_archived else cache.pages.get(query)
    if cached is not None:
        return Response(cached, media_type="application/json")
    found = await listing.list_products(db=db, query=query, totals=cache.totals, lexicon=lexicon)
    body = ProductPage(
        items=[public(row, settings) for row in found.items],
        total=found.total,
        limit=limit,
        offset=offset,
        corrected_q=found.corrected_q,
    ).model_dump_json()
    if not include_archived:
        cache.pages.put(query, body.encode())
    return Response(body, media_type="application/json")


@router.get(
    "/products/facets",
    operation_id="product_facets",
    response_model=ProductFacets,
    responses=problems(422),
)
async def product_facets(
    db: DatabaseDep,
    cache: ListingCacheDep,
    lexicon: LexiconDep,
    q: Q = None,
    category: CategoryFilter = None,
    min_price: MinPrice = None,
    max_price: MaxPrice = None,
    in_stock: InStock = False,
) -> Response:
    """How many active products match, per category and per price band, for the same
    search and filters as the listing."""
    query = ProductQuery(
        q=q.strip() if q else None,
        category=category,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
    )
    cached = cache.facets.get(query)
    if cached is not None:
        return Response(cached, media_type="application/json")
    found = await listing.facets(db=db, query=query, lexicon=lexicon)
    body = ProductFacets(
        total=found.total,
        corrected_q=found.corrected_q,
        categories=[CategoryFacet(name=name, count=count) for name, count in found.categories],
        price_bands=[
            PriceBandFacet(min=lower, max=upper, count=count)
            for lower, upper, count in found.price_bands
        ],
    ).model_dump_json()
    cache.facets.put(query, body.encode())
    return Response(body, media_type="application/json")


@router.get(
    "/products/suggest",
    operation_id="suggest_products",
    response_model=list[Suggestion],
    responses=problems(422),
)
async def suggest_products(
    db: DatabaseDep,
    cache: ListingCacheDep,
    q: Annotated[
        str, Query(min_length=1, max_length=100, pattern=NO_NUL, description="What is typed so far")
    ],
    limit: Annotated[int, Query(ge=1, le=10)] = 5,
) -> Response:
    """The best few active products whose name words start with the words typed."""
    query = ProductQuery(q=q.strip(), limit=limit)
    cached = cache.suggestions.get(query)
    if cached is not None:
        return Response(cached, media_type="application/json")
    found = await suggest(db=db, text=q, limit=limit)
    body = _SUGGESTIONS.dump_json([Suggestion(id=i, name=n) for i, n in found])
    cache.suggestions.put(query, body)
    return Response(body, media_type="application/json")


_SUGGESTIONS = TypeAdapter(list[Suggestion])


@router.get(
    "/categories",
    operation_id="list_categories",
    response_model=list[CategoryCount],
)
async def list_categories(db: DatabaseDep) -> list[CategoryCount]:
    """Each category of the active catalogue with its number of products."""
    return [
        CategoryCount(name=name, product_count=count)
        for name, count in await listing.list_categories(db=db)
    ]


@router.get(
    "/products/{product_id}",
    operation_id="get_product",
    response_model=ProductPublic,
    responses=problems(404),
)
async def get_product(
    product_id: ProductId, db: DatabaseDep, settings: SettingsDep, response: Response
) -> ProductPublic:
    """One product, archived ones included (old orders link to them), with an ETag."""
    product = await catalogue.get_product(db=db, product_id=product_id)
    response.headers["ETag"] = product.etag
    return public(product, settings)


@router.post(
    "/products",
    operation_id="create_product",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductPublic,
    responses=problems(401, 403, 409, 422),
)
async def create_product(
    body: ProductCreate,
    admin: Admin,
    db: DatabaseDep,
    settings: SettingsDep,
    cache: ListingCacheDep,
    now: Now,
    response: Response,
) -> ProductPublic:
    """Add a product; its stock becomes the first entry of its stock ledger."""
    product = await catalogue.create_product(
        db=db, fields=body.model_dump(), by=admin.subject, now=now
    )
    cache.clear()
    response.headers["Location"] = f"/products/{product.id}"
    response.headers["ETag"] = product.etag
    return public(product, settings)


@router.patch(
    "/products/{product_id}",
    operation_id="update_product",
    response_model=ProductPublic,
    responses=problems(401, 403, 404, 409, 412, 422),
)
async def update_product(
    _admin: Admin,
    product_id: ProductId,
    body: ProductUpdate,
    db: DatabaseDep,
    settings: SettingsDep,
    cache: ListingCacheDep,
    now: Now,
    response: Response,
    if_match: IfMatch = None,
) -> ProductPublic:
    """Change the fields given. Stock is not set here: use a stock adjustment."""
    product = await catalogue.update_product(
        db=db,
        product_id=product_id,
        changes=body.changes(),
        if_versions=catalogue.versions_matching(if_match),
        now=now,
    )
    cache.clear()
    response.headers["ETag"] = product.etag
    return public(product, settings)


@router.delete(
    "/products/{product_id}",
    operation_id="archive_product",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 412),
)
async def archive_product(
    _admin: Admin,
    product_id: ProductId,
    db: DatabaseDep,
    cache: ListingCacheDep,
    now: Now,
    if_match: IfMatch = None,
) -> Response:
    """Archive: hidden from the public list, still readable by id. Idempotent."""
    await catalogue.archive_product(
        db=db,
        product_id=product_id,
        if_versions=catalogue.versions_matching(if_match),
        now=now,
    )
    cache.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/products/{product_id}/stock-adjustments",
    operation_id="adjust_stock",
    response_model=ProductPublic,
    responses=problems(401, 403, 404, 409, 422),
)
async def adjust_stock(
    admin: Admin,
    product_id: ProductId,
    body: StockAdjustmentCreate,
    db: DatabaseDep,
    settings: SettingsDep,
    cache: ListingCacheDep,
    now: Now,
    response: Response,
) -> ProductPublic:
    """Restock (positive delta) or write off (negative); stock never goes below zero."""
    product = await catalogue.adjust_stock(
        db=db,
        product_id=product_id,
        delta=body.delta,
        reason=body.reason,
        by=admin.subject,
        now=now,
    )
    cache.clear()  # stock may have crossed zero (in_stock)
    response.headers["ETag"] = product.etag
    return public(product, settings)


@router.get(
    "/products/{product_id}/stock-adjustments",
    operation_id="list_stock_adjustments",
    response_model=StockAdjustmentPage,
    responses=problems(401, 403, 404, 422),
)
async def list_stock_adjustments(
    _admin: Admin, product_id: ProductId, db: DatabaseDep, limit: Limit = 20, offset: Offset = 0
) -> StockAdjustmentPage:
    """The product's stock ledger, newest first: its initial stock and every adjustment."""
    entries, total = await catalogue.list_stock_adjustments(
        db=db, product_id=product_id, limit=limit, offset=offset
    )
    return StockAdjustmentPage(
        items=[StockAdjustmentPublic(**entry.__dict__) for entry in entries],
        total=total,
        limit=limit,
        offset=offset,
    )
