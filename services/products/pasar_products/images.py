"""Product images: adding (decode, variants, files, row), ordering, choosing the main one,
deleting, and reading them for a page of products in one query.

The files go to the store before the row is written, so a row never names files that
were not stored; a failed write leaves at most unused files, which are removed again
when no row uses their hash. Every change bumps the product's ``version`` (its ETag).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying
from pasar_kit.problems import DependencyUnavailable
from pasar_products.imaging import (
    FORMATS,
    VARIANTS,
    ProcessedImage,
    image_key,
    original_name,
    process_image,
    variant_name,
)
from pasar_products.problems import ImageNotFound, ProductNotFound, TooManyImages
from pasar_products.storage import ImageStore, StorageError
from pasar_products.tables import product_images, products

log = logging.getLogger("pasar.products")

IMAGE_COLUMNS = (
    product_images.c.id,
    product_images.c.product_id,
    product_images.c.position,
    product_images.c.content_hash,
    product_images.c.extension,
    product_images.c.content_type,
    product_images.c.width,
    product_images.c.height,
    product_images.c.byte_size,
    product_images.c.created_at,
)


@dataclass(frozen=True)
class StoredImage:
    id: str
    product_id: str
    position: int
    content_hash: str
    extension: str
    content_type: str
    width: int
    height: int
    byte_size: int
    created_at: datetime

    @property
    def main(self) -> bool:
        return self.position == 0

    def key(self, variant: str) -> str:
        """The store key of a variant (``thumbnail``, ``card``, ``full``) or ``original``."""
        if variant == "original":
            return image_key(self.content_hash, original_name(self.extension))
        return image_key(self.content_hash, variant_name(variant))


# Built once (see ``pasar_kit.db``): every product answer reads it.
_OF_PRODUCTS = (
    select(*IMAGE_COLUMNS)
    .where(product_images.c.product_id.in_(bindparam("pids", expanding=True)))
    .order_by(product_images.c.product_id, product_images.c.position)
)


async def images_of(
    conn: AsyncConnection, product_ids: Sequence[str]
) -> dict[str, tuple[StoredImage, ...]]:
    """The images of these products in order, by product id: one query for a whole page."""
    if not product_ids:
        return {}
    found: dict[str, list[StoredImage]] = {}
    for row in (await conn.execute(_OF_PRODUCTS, {"pids": list(product_ids)})).mappings():
        found.setdefault(row["product_id"], []).append(StoredImage(**row))
    return {product_id: tuple(images) for product_id, images in found.items()}


async def list_images(*, db: Database, product_id: str) -> tuple[StoredImage, ...]:
    async with db.read() as conn:
        if not await _exists(conn, product_id):
            raise ProductNotFound(f"No product has id {product_id!r}.")
        return (await images_of(conn, [product_id])).get(product_id, ())


async def _exists(conn: AsyncConnection, product_id: str) -> bool:
    return bool(await conn.scalar(select(exists().where(products.c.id == product_id))))


async def _count(conn: AsyncConnection, product_id: str) -> int:
    statement = select(func.count()).where(product_images.c.product_id == product_id)
    return int((await conn.execute(statement)).scalar_one())


async def _touch(conn: AsyncConnection, product_id: str, now: datetime) -> None:
    """Bump the product's version (its ETag changes), which also locks its row until the
    commit: image changes to one product run one after another."""
    result = await conn.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(version=products.c.version + 1, updated_at=now)
    )
    if result.rowcount != 1:
        raise ProductNotFound(f"No product has id {product_id!r}.")


async def _ordered(conn: AsyncConnection, product_id: str) -> list[StoredImage]:
    return list((await images_of(conn, [product_id])).get(product_id, ()))


async def prepare_image(
    data: bytes, *, max_pixels: int, limiter: CapacityLimiter | None = None
) -> ProcessedImage:
    """``imaging.process_image`` in a worker thread: decoding and resizing take tens of
    milliseconds of CPU, which must not stall the event loop. ``limiter`` bounds how many
    run at once (each holds a decoded image in memory)."""
    return await anyio.to_thread.run_sync(
        partial(process_image, data, max_pixels=max_pixels), limiter=limiter
    )


async def store_files(store: ImageStore, image: ProcessedImage) -> None:
    """Put the image's files that are not stored yet (the same bytes share their files)."""
    try:
        for key, data in image.files.items():
            if not await store.exists(key):
                await store.put(key, data)
    except StorageError as exc:
        log.error("image store failed: %s", exc)
        raise DependencyUnavailable("The image store is unavailable; try again.") from exc


async def add_image(
    *,
    db: Database,
    store: ImageStore,
    product_id: str,
    data: bytes,
    main: bool,
    max_pixels: int,
    max_per_product: int,
    now: datetime,
    limiter: CapacityLimiter | None = None,
) -> StoredImage:
    """Decode ``data``, store its files, then record it last (or first when ``main``)."""
    async with db.read() as conn:
        # Cheap refusals before the CPU work; both are checked again under the lock.
        if not await _exists(conn, product_id):
            raise ProductNotFound(f"No product has id {product_id!r}.")
        if await _count(conn, product_id) >= max_per_product:
            raise _too_many(max_per_product)
    image = await prepare_image(data, max_pixels=max_pixels, limiter=limiter)
    await store_files(store, image)

    async def record() -> StoredImage:
        async with db.write() as conn:
            return await insert_image(
                conn,
                product_id=product_id,
                image=image,
                main=main,
                max_per_product=max_per_product,
                now=now,
            )

    try:
        stored = await retrying(record)
    except Exception:
        await forget_unused(db=db, store=store, content_hash=image.content_hash)
        raise
    return stored


async def insert_image(
    conn: AsyncConnection,
    *,
    product_id: str,
    image: ProcessedImage,
    main: bool,
    max_per_product: int,
    now: datetime,
) -> StoredImage:
    """The row of an image whose files are stored, in the caller's transaction."""
    await _touch(conn, product_id, now)
    images = await _ordered(conn, product_id)
    count = len(images)
    if count >= max_per_product:
        raise _too_many(max_per_product)
    if main:
        # Row by row, by primary key: a ranged UPDATE takes gap locks on MariaDB that
        # deadlock with another product's insert.
        await _renumber(conn, images, first=1)
    stored = StoredImage(
        id=str(uuid.uuid4()),
        product_id=product_id,
        position=0 if main else count,
        content_hash=image.content_hash,
        extension=image.extension,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        byte_size=len(image.original),
        created_at=now,
    )
    await conn.execute(insert(product_images).values(**stored.__dict__))
    return stored


def _too_many(limit: int) -> TooManyImages:
    return TooManyImages(f"A product has at most {limit} images; delete one first.", limit=limit)


async def update_image(
    *,
    db: Database,
    product_id: str,
    image_id: str,
    position: int | None,
    main: bool,
    now: datetime,
) -> StoredImage:
    """Move an image to ``position`` (0 when ``main``), shifting the others; positions
    past the end mean the end."""

    async def move() -> None:
        async with db.write() as conn:
            await _touch(conn, product_id, now)
            images = await _ordered(conn, product_id)
            moving = next((image for image in images if image.id == image_id), None)
            if moving is None:
                raise ImageNotFound(f"Product {product_id!r} has no image {image_id!r}.")
            target = 0 if main else moving.position if position is None else position
            images.remove(moving)
            images.insert(min(target, len(images)), moving)
            await _renumber(conn, images)

    await retrying(move)
    return next(image for image in await _after(db, product_id) if image.id == image_id)


async def _after(db: Database, product_id: str) -> tuple[StoredImage, ...]:
    async with db.read() as conn:
        return (await images_of(conn, [product_id])).get(product_id, ())


_SET_POSITION = (
    update(product_images)
    .where(product_images.c.id == bindparam("iid"))
    .values(position=bindparam("new_position"))
)


async def _renumber(
    conn: AsyncConnection, images: Sequence[StoredImage], *, first: int = 0
) -> None:
    """Number ``images`` from ``first`` on in their order, writing only the rows that
    moved (by primary key)."""
    moved = [
        {"iid": image.id, "new_position": index}
        for index, image in enumerate(images, start=first)
        if image.position != index
    ]
    if moved:
        await conn.execute(_SET_POSITION, moved)


async def delete_image(
    *, db: Database, store: ImageStore, product_id: str, image_id: str, now: datetime
) -> None:
    """Remove the image; its files go too once no other image uses the same bytes."""

    async def remove() -> StoredImage:
        async with db.write() as conn:
            await _touch(conn, product_id, now)
            images = await _ordered(conn, product_id)
            gone = next((image for image in images if image.id == image_id), None)
            if gone is None:
                raise ImageNotFound(f"Product {product_id!r} has no image {image_id!r}.")
            await conn.execute(delete(product_images).where(product_images.c.id == image_id))
            images.remove(gone)
            await _renumber(conn, images)
        return gone

    gone = await retrying(remove)
    await forget_unused(db=db, store=store, content_hash=gone.content_hash)


async def forget_unused(*, db: Database, store: ImageStore, content_hash: str) -> None:
    """Delete the files of ``content_hash`` if no image row uses it (after a commit).

    Best effort: a file left behind costs disk, not correctness, so a store failure is
    logged, not raised.
    """
    try:
        async with db.read() as conn:
            used = await conn.scalar(
                select(exists().where(product_images.c.content_hash == content_hash))
            )
        if used:
            return
        for name in _file_names():
            await store.delete(image_key(content_hash, name))
    except Exception:
        log.exception("could not remove the unused files of image %s", content_hash)


def _file_names() -> list[str]:
    originals = [original_name(extension) for _, extension in FORMATS.values()]
    return originals + [variant_name(variant) for variant in VARIANTS]


def urls_of(image: StoredImage, public_url: str) -> Mapping[str, str]:
    """Absolute URLs of the image's variants, content-hashed (served as immutable). The
    original has none: it is kept, not served (see ``imaging.is_served_key``)."""
    return {variant: f"{public_url}/images/{image.key(variant)}" for variant in VARIANTS}
