"""The service as a whole: operations endpoints, OpenAPI, migrations, seed and audit."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image
from products_support import Catalogue, Tokens
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import Connection

from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Database
from pasar_kit.migrations import alembic_config, upgrade
from pasar_kit.testing import fresh_database, lifespan_of
from pasar_products.app import MIGRATIONS, create_app
from pasar_products.audit import audit_stock
from pasar_products.seed import seed_demo_catalogue
from pasar_products.settings import Settings
from pasar_products.storage import LocalImageStore
from pasar_products.tables import metadata, outside_native_search, product_images, products

DEMO_PRODUCTS = 37  # the demo catalogue (pasar_products.seed)


async def test_health_ready_metrics_and_request_ids(products_client: httpx.AsyncClient) -> None:
    assert (await products_client.get("/healthz")).json()["status"] == "ok"
    assert (await products_client.get("/readyz")).status_code == 200
    response = await products_client.get("/products", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    metrics = await products_client.get("/metrics")
    assert metrics.status_code == 200
    # Labelled by route template (the id of a product never becomes a label).
    await products_client.get("/products/some-id")
    metrics = await products_client.get("/metrics")
    assert 'route="/products"' in metrics.text
    assert 'route="/products/{product_id}"' in metrics.text
    assert 'service="products"' in metrics.text


async def test_not_ready_when_the_database_is_unreachable(
    products_settings: Settings, products_verifier: TokenVerifier
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens there once the block ends
    settings = products_settings.model_copy(
        update={"database_url": f"mysql+asyncmy://root@127.0.0.1:{port}/products"}
    )
    app = create_app(settings, verifier=products_verifier)
    async with lifespan_of(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            assert (await client.get("/healthz")).status_code == 200
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


async def test_openapi_names_every_operation_and_its_problems(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    # The reservations are for services: described in the internal document only.
    public = (await products_client.get("/openapi.json")).json()
    internal = await products_client.get(
        "/internal/openapi.json", headers=products_tokens.service()
    )
    assert internal.status_code == 200, internal.text
    assert not [path for path in public["paths"] if path.startswith("/internal")]
    operations = {
        op["operationId"]: {int(code) for code in op["responses"] if code.isdigit()}
        for spec in (public, internal.json())
        for path in spec["paths"].values()
        for op in path.values()
    }
    assert operations["list_products"] >= {200, 422}
    assert operations["create_product"] >= {201, 401, 403, 409, 422}
    assert operations["update_product"] >= {200, 401, 403, 404, 409, 412, 422}
    assert operations["archive_product"] >= {204, 401, 403, 404, 412}
    assert operations["adjust_stock"] >= {200, 401, 403, 404, 409, 422}
    assert operations["create_reservation"] >= {200, 201, 401, 403, 409, 422}
    assert operations["commit_reservation"] >= {200, 401, 403, 404, 409}
    assert operations["release_reservation"] >= {200, 401, 403, 404}
    assert operations["get_reservation"] >= {200, 401, 403, 404}
    assert operations["stock_audit"] >= {200, 401, 403}
    assert operations["list_stock_adjustments"] >= {200, 401, 403, 404, 422}
    assert operations["low_stock"] >= {200, 401, 403, 422}
    assert {"get_product", "list_categories", "healthz", "readyz", "metrics"} <= set(operations)


async def test_unknown_route_and_method_are_problems(products_client: httpx.AsyncClient) -> None:
    missing = await products_client.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong = await products_client.put("/products")
    assert wrong.status_code == 405


@pytest.mark.parametrize("path", ["/products/facets", "/products/suggest"])
async def test_allow_names_the_methods_of_the_path_not_of_the_product_template(
    products_client: httpx.AsyncClient, path: str
) -> None:
    # "/products/{product_id}" also fits these paths; its PATCH and DELETE are not theirs.
    answer = await products_client.options(path)
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET, HEAD")


def _differences(connection: Connection) -> list[Any]:
    # The search index's native parts (FTS5, tsvector, FULLTEXT) are outside the metadata.
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": outside_native_search}
    )
    return list(compare_metadata(context, metadata))


async def test_the_migration_builds_exactly_the_tables_the_code_uses(
    products_db: Database,
) -> None:
    async with products_db.read() as conn:
        assert await conn.run_sync(_differences) == []


async def test_seed_is_idempotent_and_plausible(
    products_db: Database, products_client: httpx.AsyncClient, products_store: LocalImageStore
) -> None:
    inserted = await seed_demo_catalogue(db=products_db, store=products_store)
    assert 24 <= inserted <= 60
    assert await seed_demo_catalogue(db=products_db, store=products_store) == 0
    page = (await products_client.get("/products", params={"limit": 100})).json()
    assert page["total"] == inserted
    assert all(p["price"] > 0 and p["price"] % 100 == 0 for p in page["items"])
    # Every demo product has one drawn picture (not two after the second seed), served.
    assert [len(p["images"]) for p in page["items"]] == [1] * inserted
    assert len({p["images"][0]["urls"]["full"] for p in page["items"]}) == inserted
    assert all(p["image_url"] == p["images"][0]["urls"]["full"] for p in page["items"])
    card = page["items"][0]["images"][0]["urls"]["card"]
    served = await products_client.get(card[card.index("/images/") :])
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(served.content)) as picture:
        assert picture.size == (480, 480)
    categories = (await products_client.get("/categories")).json()
    assert len(categories) >= 5
    assert sum(c["product_count"] for c in categories) == inserted
    assert await audit_stock(db=products_db) == []


async def test_seed_twice_at_once_inserts_each_product_once(
    products_db: Database, products_store: LocalImageStore
) -> None:
    other = Database(products_db.url)
    try:
        # Neither seeder may fail: two `pasar up` (or `pasar seed`) on one database at once.
        inserted = await asyncio.gather(
            seed_demo_catalogue(db=products_db, store=products_store),
            seed_demo_catalogue(db=other, store=products_store),
        )
    finally:
        await other.dispose()
    async with products_db.read() as conn:
        stored = await conn.scalar(select(func.count()).select_from(products))
        pictures = await conn.scalar(select(func.count()).select_from(product_images))
    assert sum(inserted) == stored == pictures == DEMO_PRODUCTS, inserted
    assert await seed_demo_catalogue(db=products_db, store=products_store) == 0


async def test_audit_reports_stock_that_does_not_add_up(
    products_catalogue: Catalogue, products_db: Database
) -> None:
    a = await products_catalogue.product(sku="AUDIT-A", stock=5)
    b = await products_catalogue.product(sku="AUDIT-B", stock=5)
    await products_catalogue.reserve([(a["id"], 2)])
    assert (await products_catalogue.audit()) == {"ok": True, "violations": []}
    async with products_db.write() as conn:  # stock changed behind the service's back
        await conn.execute(update(products).where(products.c.id == b["id"]).values(stock=7))
    audit = await products_catalogue.audit()
    assert audit["ok"] is False
    assert audit["violations"] == [
        {"product_id": b["id"], "sku": "AUDIT-B", "ledger": 5, "stock": 7, "held": 0,
         "committed": 0}
    ]  # fmt: skip


def test_the_images_migration_goes_down_and_up_again(tmp_path: Path) -> None:
    with fresh_database("products_images_migration", tmp_path) as url:
        upgrade(url, MIGRATIONS)
        command.downgrade(alembic_config(url, MIGRATIONS), "0001")
        assert "product_images" not in asyncio.run(_tables(url))
        upgrade(url, MIGRATIONS)
        assert "product_images" in asyncio.run(_tables(url))


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.read() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await db.dispose()
