"""The storefront under load, against `pasar up` on a scratch data dir.

* render: the catalogue page's template alone, in-process (24 products, Indonesian);
* catalogue pages: GET / over varied pages (random category, sort, page, sometimes a
  search) at concurrency 16, beside the same two API calls made straight to products;
* signed in: the same pages for a signed-in shopper (one more call: the unread count);
* product page: GET /products/{id}.

For each: throughput, latency, and CPU milliseconds per request of every process
involved (from /proc: the figure that survives a noisy machine). Nothing is asserted.

Usage: python bench/storefront.py [--requests 2000] [--concurrency 16] [--db sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from typing import Any

import aiohttp
import benchlib
from benchlib import PASSWORD, CpuMeter, pct

SORTS = ["name", "-name", "price", "-price", "-created_at"]


async def load(name: str, n: int, concurrency: int, call: Any, cpu: CpuMeter) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter()
            status = await call(i)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    cpu.snapshot()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    print(
        f"{name:<30} {n / elapsed:7.1f} req/s  p50 {pct(latencies, 0.5):6.1f} ms  "
        f"p99 {pct(latencies, 0.99):6.1f} ms  CPU ms/req: {cpu.report(n)}  "
        f"{dict(sorted(statuses.items()))}"
    )


def render_alone(repeat: int = 2000) -> None:
    """The catalogue template with 24 products, no I/O: what the web adds per page."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from starlette.requests import Request

    from pasar_web import i18n
    from pasar_web.api import CatalogueQuery
    from pasar_web.assets import Assets
    from pasar_web.models import Category, Product, ProductPage
    from pasar_web.pages.catalogue import SORTS as LABELS
    from pasar_web.pages.catalogue import tile
    from pasar_web.session import Session
    from pasar_web.settings import Settings
    from pasar_web.shell import build_templates

    i18n.load_catalogues()
    env = build_templates(Assets())
    now = datetime.now(UTC)
    items = [
        Product(
            id=f"{i:08d}-0000-0000-0000-000000000000",
            sku=f"SKU-{i}",
            name=f"Kopi Gayo {i}",
            description="",
            price=85_000 + i,
            currency="IDR",
            stock=i % 7,
            category="Kopi",
            image_url=None,
            active=True,
            created_at=now,
            updated_at=now,
        )
        for i in range(24)
    ]
    page = ProductPage(items=items, total=37, limit=24, offset=0)
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [],
            "app": None,
        }
    )
    template = env.get_template("catalogue.html")
    settings = Settings(session_secret="bench-only-secret-bench-only")
    context = dict(
        request=request,
        path="/",
        account=None,
        cart_count=2,
        unread=None,
        csrf_token=Session().csrf_token(),
        flashes=[],
        degraded=[],
        settings=settings,
        message=None,
        results=page,
        categories=[Category(name=f"C{i}", product_count=6) for i in range(6)],
        all_count=37,
        query=CatalogueQuery(),
        params=dict.fromkeys(("q", "category", "min_price", "max_price", "in_stock", "sort")),
        sorts=dict(LABELS),
        page_number=1,
        pages=2,
        page_window=[1, 2],
        tile=tile,
        filtered=False,
    )
    with i18n.speaking("id", ZoneInfo("Asia/Jakarta")):
        html = template.render(**context)
        started = time.process_time()
        for _ in range(repeat):
            template.render(**context)
        took = (time.process_time() - started) / repeat
    print(
        f"{'render catalogue.html alone':<30} {took * 1000:.2f} ms CPU per page "
        f"({len(html) // 1024} KiB of HTML, 24 products)"
    )


async def run(args: argparse.Namespace, urls: dict[str, str], cpu: CpuMeter) -> None:
    web, products = urls["web"], urls["products"]
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"{products}/categories") as response:
            categories = [c["name"] for c in await response.json()]
        async with http.get(f"{products}/products?limit=50") as response:
            product_ids = [p["id"] for p in (await response.json())["items"]]

        def varied(i: int) -> dict[str, str]:
            params = {"sort": rng.choice(SORTS)}
            if i % 3:
                params["category"] = rng.choice(categories)
            if i % 5 == 0:
                params["q"] = rng.choice(["kopi", "batik", "teh", "sepatu"])
            if i % 4 == 0:
                params["page"] = "2"
            return params

        async def storefront(i: int, session: aiohttp.ClientSession = http) -> int:
            async with session.get(f"{web}/", params=varied(i)) as response:
                await response.read()
                return response.status

        async def api_only(i: int) -> int:
            params = varied(i)
            page = int(params.pop("page", "1"))
            params.update({"limit": "24", "offset": str((page - 1) * 24)})

            async def listing() -> int:
                async with http.get(f"{products}/products", params=params) as response:
                    await response.read()
                    return response.status

            async def categories_() -> int:
                async with http.get(f"{products}/categories") as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(listing(), categories_())
            return max(statuses)

        async def product_page(i: int) -> int:
            async with http.get(f"{web}/products/{product_ids[i % len(product_ids)]}") as r:
                await r.read()
                return r.status

        n, c = args.requests, args.concurrency
        await load("API: /products + /categories", n, c, api_only, cpu)
        await load("web: catalogue pages", n, c, storefront, cpu)
        await load("web: product page", n, c, product_page, cpu)

        # A signed-in shopper (the header's unread count is one more call, to users).
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as shopper:
            async with shopper.get(f"{web}/register") as response:
                html = await response.text()
            token = html.split('name="csrf_token" value="')[1].split('"')[0]
            form = {
                "csrf_token": token,
                "full_name": "Bench",
                "password": PASSWORD,
                "email": f"bench-{rng.randrange(10**9)}@example.com",
            }
            async with shopper.post(f"{web}/register", data=form) as response:
                assert response.status == 200, response.status
            await load("web: catalogue, signed in", n, c, lambda i: storefront(i, shopper), cpu)


def main() -> None:
    args = benchlib.parse_options(requests=2000, concurrency=16)
    render_alone()
    with benchlib.running_shop(args.db) as shop:
        cpu = benchlib.shop_meter(shop, args.db, ("web", "users", "products"))
        print(
            f"storefront bench on {args.db}: {args.requests} requests per scenario, "
            f"concurrency {args.concurrency}, {os.cpu_count()} cores"
        )
        urls = {name: shop.url(name) for name in ("web", "users", "products", "orders")}
        asyncio.run(run(args, urls, cpu))


if __name__ == "__main__":
    main()
