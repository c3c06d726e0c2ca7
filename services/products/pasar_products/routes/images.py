"""Product images: upload, list, reorder, delete (admin), and the stored files (anyone)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Path, Response, UploadFile, status

from pasar_kit.auth import Admin
from pasar_kit.problems import problems
from pasar_products import images
from pasar_products.deps import (
    DatabaseDep,
    ImageId,
    ImageStoreDep,
    ImageWork,
    ListingCacheDep,
    Now,
    ProductId,
    SettingsDep,
)
from pasar_products.imaging import is_served_key, key_content_type
from pasar_products.problems import ImageNotFound, ImageTooLarge
from pasar_products.routes.catalogue import image_public
from pasar_products.schemas import ImagePublic, ImageUpdate

router = APIRouter(tags=["images"])

# A year: the URL changes whenever the content does (it holds the content's hash).
IMMUTABLE = "public, max-age=31536000, immutable"
# How much of a multipart body is not the file: boundaries, part headers, the `main` field.
MULTIPART_OVERHEAD = 16 * 1024


@router.post(
    "/products/{product_id}/images",
    operation_id="upload_product_image",
    status_code=status.HTTP_201_CREATED,
    response_model=ImagePublic,
    responses=problems(401, 403, 404, 409, 413, 422, 503),
)
async def upload_image(
    _admin: Admin,
    product_id: ProductId,
    file: Annotated[UploadFile, File(description="A JPEG, PNG or WebP image")],
    db: DatabaseDep,
    store: ImageStoreDep,
    work: ImageWork,
    settings: SettingsDep,
    cache: ListingCacheDep,
    now: Now,
    response: Response,
    main: Annotated[bool, Form(description="true: this becomes the main image")] = False,
) -> ImagePublic:
    """Add an image (multipart, field ``file``): last, or first with ``main=true``.

    What it is comes from its content (JPEG, PNG, WebP), not its name or type. The
    stored files are the original (kept, never served: its EXIF may hold a GPS position)
    and WebP variants of 160, 480 and 1200 px without metadata, which are served.
    """
    # The body limit stopped anything much larger; this is the file's exact size.
    data = await file.read(settings.image_max_bytes + 1)
    await file.close()
    if len(data) > settings.image_max_bytes:
        raise ImageTooLarge(
            f"An image may be at most {settings.image_max_bytes} bytes.",
            limit=settings.image_max_bytes,
        )
    image = await images.add_image(
        db=db,
        store=store,
        product_id=product_id,
        data=data,
        main=main,
        max_pixels=settings.image_max_pixels,
        max_per_product=settings.image_max_per_product,
        now=now,
        limiter=work,
    )
    cache.clear()
    response.headers["Location"] = f"/products/{product_id}/images/{image.id}"
    return image_public(image, settings)


@router.get(
    "/products/{product_id}/images",
    operation_id="list_product_images",
    response_model=list[ImagePublic],
    responses=problems(404),
)
async def list_images(
    product_id: ProductId, db: DatabaseDep, settings: SettingsDep
) -> list[ImagePublic]:
    """The product's images in order, the main one first."""
    found = await images.list_images(db=db, product_id=product_id)
    return [image_public(image, settings) for image in found]


@router.get(
    "/products/{product_id}/images/{image_id}",
    operation_id="get_product_image",
    response_model=ImagePublic,
    responses=problems(404),
)
async def get_image(
    product_id: ProductId, image_id: ImageId, db: DatabaseDep, settings: SettingsDep
) -> ImagePublic:
    """One of the product's images."""
    found = await images.list_images(db=db, product_id=product_id)
    image = next((image for image in found if image.id == image_id), None)
    if image is None:
        raise ImageNotFound(f"Product {product_id!r} has no image {image_id!r}.")
    return image_public(image, settings)


@router.patch(
    "/products/{product_id}/images/{image_id}",
    operation_id="update_product_image",
    response_model=ImagePublic,
    responses=problems(401, 403, 404, 422),
)
async def update_image(
    _admin: Admin,
    product_id: ProductId,
    image_id: ImageId,
    body: ImageUpdate,
    db: DatabaseDep,
    settings: SettingsDep,
    cache: ListingCacheDep,
    now: Now,
) -> ImagePublic:
    """Move the image to ``position`` (the others shift), or make it the main one."""
    image = await images.update_image(
        db=db,
        product_id=product_id,
        image_id=image_id,
        position=body.position,
        main=bool(body.main),
        now=now,
    )
    cache.clear()
    return image_public(image, settings)


@router.delete(
    "/products/{product_id}/images/{image_id}",
    operation_id="delete_product_image",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404),
)
async def delete_image(
    _admin: Admin,
    product_id: ProductId,
    image_id: ImageId,
    db: DatabaseDep,
    store: ImageStoreDep,
    cache: ListingCacheDep,
    now: Now,
) -> Response:
    """Remove the image; the next one becomes the main one if it was."""
    await images.delete_image(db=db, store=store, product_id=product_id, image_id=image_id, now=now)
    cache.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/images/{key:path}",
    operation_id="get_image_file",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}}},
        **problems(404),
    },
)
async def image_file(
    key: Annotated[str, Path(description="As in an image's URLs")],
    store: ImageStoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A variant of a stored image. Its URL changes with its content, so it may be cached
    for good. Originals are not served (their metadata is the uploader's): 404."""
    if not is_served_key(key):
        raise ImageNotFound("No image file has this address.")
    # The key holds the content's hash: it is the file's identity, no read needed.
    etag = f'"{key.replace("/", "-")}"'
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    data = await store.get(key)
    if data is None:
        raise ImageNotFound("No image file has this address.")
    return Response(data, media_type=key_content_type(key), headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110): ``W/"x"`` matches ``"x"``."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
