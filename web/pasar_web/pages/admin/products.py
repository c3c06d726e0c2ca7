"""Products: the list, creating and editing (never silently over another admin's edit),
archiving and restoring, and the stock with its ledger."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.datastructures import UploadFile
from starlette.responses import Response

from pasar_kit.http import FilePart
from pasar_web import i18n
from pasar_web.api import ApiProblem, CatalogueQuery
from pasar_web.errors import IMAGE_TOO_LARGE, friendly
from pasar_web.forms import Fields
from pasar_web.i18n import gettext as _
from pasar_web.i18n import lazy
from pasar_web.models import Product, StockAdjustmentPage
from pasar_web.shell import Page, PageDep

router = APIRouter()

ProductId = Annotated[str, Path(max_length=64)]
ImageId = Annotated[str, Path(max_length=64)]
# Where the edit page posts a picture (the app lets this path take a file: see app.py).
IMAGE_UPLOAD_PATH = re.compile(r"/admin/products/[^/]+/images")
# The rest of an upload's body: boundaries, part headers, the CSRF token and checkbox.
MULTIPART_OVERHEAD = 64 * 1024
PAGE_SIZE = 25
MAX_PRICE = 10**15
MAX_STOCK = 10**9

# The editable fields, in form order, with how a change is shown to another admin.
EDITABLE: dict[str, str] = {
    "sku": lazy("SKU"),
    "name": lazy("Name"),
    "category": lazy("Category"),
    "price": lazy("Price"),
    "description": lazy("Description"),
    "image_url": lazy("Image URL"),
}


@router.get("/products", name="admin_products")
async def product_list(
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    archived: Annotated[str | None, Query(max_length=5)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    auth = page.require_admin()
    include_archived = archived in ("1", "true", "on")
    query = CatalogueQuery(
        q=(q or "").strip() or None,
        include_archived=include_archived,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    found = await page.services.products.search(query, auth=auth)
    return await page.render(
        "admin/products.html",
        products=found,
        params={"q": query.q, "archived": "1" if include_archived else None},
        page_number=page_number,
        pages=max(1, math.ceil(found.total / PAGE_SIZE)),
    )


def _read_product(fields: Fields) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sku": fields.text("sku", max_length=64).upper(),
        "name": fields.text("name", max_length=200),
        "category": fields.text("category", max_length=100),
        "price": fields.whole_number("price", minimum=0, maximum=MAX_PRICE),
        "description": fields.text("description", required=False, max_length=5000),
        "image_url": fields.text("image_url", required=False, max_length=500) or None,
    }
    url = values["image_url"]
    if url and not url.startswith(("https://", "http://")):
        fields.errors["image_url"] = _("Use a web address starting with https://.")
    return values


async def _categories(page: Page) -> list[str]:
    found = await page.optional("products", page.services.products.categories(), [])
    return [category.name for category in found]


@router.get("/products/new", name="admin_new_product")
async def new_product_form(page: PageDep) -> Response:
    page.require_admin()
    return await page.render(
        "admin/product_new.html",
        values={"stock": "0"},
        errors={},
        categories=await _categories(page),
        message=None,
    )


@router.post("/products/new")
async def create_product(page: PageDep) -> Response:
    auth = page.require_admin()
    fields = Fields(await page.form())
    values = _read_product(fields)
    values["stock"] = fields.whole_number("stock", minimum=0, maximum=MAX_STOCK)
    message = None
    if fields.ok:
        try:
            product = await page.services.products.create(auth, values)
        except ApiProblem as problem:
            if problem.code == "sku_taken":
                fields.errors["sku"] = friendly(problem)
            elif problem.status == 422:
                fields.add_service_errors(problem.field_errors())
            message = None if fields.errors else friendly(problem)
        else:
            return page.redirect(
                f"/admin/products/{product.id}", _("%(name)s is added.", name=product.name)
            )
    return await page.render(
        "admin/product_new.html",
        status=400,
        values=fields.values,
        errors=fields.errors,
        categories=await _categories(page),
        message=message,
    )


def _snapshot(product: Product) -> dict[str, Any]:
    return {name: getattr(product, name) for name in EDITABLE}


def _shown(name: str, value: Any, currency: str) -> str:
    if value is None or value == "":
        return "—"
    if name == "price":
        return i18n.money(int(value), currency)
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _edit_page(
    page: Page,
    product: Product,
    etag: str,
    *,
    values: dict[str, Any] | None = None,
    original: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    stock_errors: dict[str, str] | None = None,
    stock_values: dict[str, str] | None = None,
    theirs: list[tuple[str, str, str]] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    auth = page.require_admin()
    history, categories = await asyncio.gather(
        page.optional(
            "products",
            page.services.products.adjustments(auth, product.id, limit=20),
            StockAdjustmentPage(items=[], total=0, limit=20, offset=0),
        ),
        _categories(page),
    )
    shown = values if values is not None else {k: v or "" for k, v in _snapshot(product).items()}
    return await page.render(
        "admin/product_edit.html",
        status=status,
        product=product,
        etag=etag,
        values=shown,
        original=json.dumps(original if original is not None else _snapshot(product)),
        errors=errors or {},
        stock_errors=stock_errors or {},
        stock_values=stock_values or {},
        history=history,
        categories=categories,
        theirs=theirs or [],
        message=message,
    )


@router.get("/products/{product_id}", name="admin_product")
async def edit_product_form(page: PageDep, product_id: ProductId) -> Response:
    page.require_admin()
    found = await page.services.products.get(product_id)
    if found is None:
        return await page.render("not_found.html", status=404)
    product, etag = found
    return await _edit_page(page, product, etag)


async def _edited_meanwhile(
    page: Page,
    current: Product,
    current_etag: str,
    *,
    fields: Fields,
    original: dict[str, Any],
    changes: dict[str, Any],
) -> Response:
    """Another admin saved first (412): show what they changed, and the form again with
    their version and this admin's own edits on top."""
    theirs = [
        (
            _(EDITABLE[name]),
            _shown(name, original.get(name), current.currency),
            _shown(name, getattr(current, name), current.currency),
        )
        for name in EDITABLE
        if name in original and original[name] != getattr(current, name)
    ]
    message = _(
        "Someone else saved this product while you were editing it. Their changes "
        "are listed below; your edits are still in the form. Save again to apply "
        "your edits on top of theirs."
    )
    merged = {k: v or "" for k, v in _snapshot(current).items()}
    merged.update({k: fields.values[k] for k in changes if k in fields.values})
    return await _edit_page(
        page,
        current,
        current_etag,
        values=merged,
        original=_snapshot(current),
        theirs=theirs,
        message=message,
        status=409,
    )


@router.post("/products/{product_id}")
async def save_product(page: PageDep, product_id: ProductId) -> Response:
    auth = page.require_admin()
    form = await page.form()
    fields = Fields(form)
    values = _read_product(fields)
    etag = str(form.get("etag", ""))[:100]
    try:
        original = json.loads(str(form.get("original", "{}")))
        assert isinstance(original, dict)
    except (ValueError, AssertionError):
        original = {}
    found = await page.services.products.get(product_id)
    if found is None:
        return await page.render("not_found.html", status=404)
    current, current_etag = found
    if not fields.ok:
        return await _edit_page(
            page,
            current,
            etag,
            values=fields.values,
            original=original,
            errors=fields.errors,
            status=400,
        )
    # Send only what this admin changed, so a field they did not touch is never reverted.
    changes = {k: v for k, v in values.items() if k not in original or original[k] != v}
    if not changes:
        return page.redirect(f"/admin/products/{product_id}", _("Nothing was changed."), "info")
    try:
        product, _etag = await page.services.products.update(
            auth, product_id, changes, etag=etag or None
        )
    except ApiProblem as problem:
        if problem.status == 412:
            return await _edited_meanwhile(
                page, current, current_etag, fields=fields, original=original, changes=changes
            )
        if problem.code == "sku_taken":
            fields.errors["sku"] = friendly(problem)
        elif problem.status == 422:
            fields.add_service_errors(problem.field_errors())
        return await _edit_page(
            page,
            current,
            etag,
            values=fields.values,
            original=original,
            errors=fields.errors,
            message=None if fields.errors else friendly(problem),
            status=problem.status,
        )
    return page.redirect(
        f"/admin/products/{product.id}", _("%(name)s is saved.", name=product.name)
    )


@router.post("/products/{product_id}/archive", name="admin_archive_product")
async def archive(page: PageDep, product_id: ProductId) -> Response:
    auth = page.require_admin()
    await page.form()
    await page.services.products.archive(auth, product_id)
    return page.redirect(
        f"/admin/products/{product_id}",
        _("The product is archived: customers no longer see it or can buy it."),
    )


@router.post("/products/{product_id}/restore", name="admin_restore_product")
async def restore(page: PageDep, product_id: ProductId) -> Response:
    auth = page.require_admin()
    await page.form()
    await page.services.products.update(auth, product_id, {"active": True}, etag=None)
    return page.redirect(f"/admin/products/{product_id}", _("The product is on sale again."))


@router.post("/products/{product_id}/stock", name="admin_adjust_stock")
async def adjust_stock(page: PageDep, product_id: ProductId) -> Response:
    auth = page.require_admin()
    fields = Fields(await page.form())
    delta = fields.whole_number("delta", minimum=-MAX_STOCK, maximum=MAX_STOCK)
    reason = fields.text("reason", max_length=200)
    if delta == 0:
        fields.errors["delta"] = _("Enter how many units come in (+) or go out (-).")
    if fields.ok and delta is not None:
        try:
            product = await page.services.products.adjust_stock(
                auth, product_id, delta=delta, reason=reason
            )
        except ApiProblem as problem:
            fields.errors["delta"] = friendly(problem)
        else:
            return page.redirect(
                f"/admin/products/{product_id}",
                _("Stock is now %(count)s.", count=i18n.number(product.stock)),
            )
    found = await page.services.products.get(product_id)
    if found is None:
        return await page.render("not_found.html", status=404)
    return await _edit_page(
        page,
        found[0],
        found[1],
        stock_errors=fields.errors,
        stock_values=fields.values,
        status=400,
    )


@router.post("/products/{product_id}/images", name="admin_upload_image")
async def upload_image(page: PageDep, product_id: ProductId) -> Response:
    """One picture from the edit page's upload form (no script needed)."""
    auth = page.require_admin()
    form = await page.form(max_files=1)
    back = f"/admin/products/{product_id}"
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return page.redirect(back, _("Choose a picture to upload."), "error")
    limit = page.web.settings.image_max_bytes
    data = await upload.read(limit + 1)
    if not data:
        return page.redirect(back, _("Choose a picture to upload."), "error")
    if len(data) > limit:
        return page.redirect(back, _(IMAGE_TOO_LARGE), "error")
    picture = FilePart(
        upload.filename[:200], data, upload.content_type or "application/octet-stream"
    )
    main = form.get("main") in ("1", "true", "on")
    try:
        await page.services.products.upload_image(auth, product_id, picture, main=main)
    except ApiProblem as problem:
        if problem.status == 404 and problem.code == "product_not_found":
            return await page.render("not_found.html", status=404)
        return page.redirect(back, friendly(problem), "error")
    return page.redirect(back, _("The picture is added."))


@router.post("/products/{product_id}/images/{image_id}/main", name="admin_main_image")
async def make_main_image(page: PageDep, product_id: ProductId, image_id: ImageId) -> Response:
    auth = page.require_admin()
    await page.form()
    back = f"/admin/products/{product_id}"
    try:
        await page.services.products.make_main_image(auth, product_id, image_id)
    except ApiProblem as problem:
        return page.redirect(back, friendly(problem), "error")
    return page.redirect(back, _("This is now the main picture."))


@router.post("/products/{product_id}/images/{image_id}/delete", name="admin_delete_image")
async def delete_image(page: PageDep, product_id: ProductId, image_id: ImageId) -> Response:
    auth = page.require_admin()
    await page.form()
    back = f"/admin/products/{product_id}"
    try:
        await page.services.products.delete_image(auth, product_id, image_id)
    except ApiProblem as problem:
        return page.redirect(back, friendly(problem), "error")
    return page.redirect(back, _("The picture is deleted."))
