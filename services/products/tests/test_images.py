"""Product images through the ASGI app: upload, variants, serving, order, deletion, limits.

Every image is made here with Pillow; the store is the real local directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import ExifTags, Image
from products_support import Catalogue, Clock, Tokens

from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Database
from pasar_kit.testing import lifespan_of
from pasar_products import images
from pasar_products.app import create_app
from pasar_products.settings import Settings
from pasar_products.storage import LocalImageStore, StorageError
from pasar_products.tables import product_images

PUBLIC = "http://products"


def picture(
    fmt: str = "JPEG", size: tuple[int, int] = (2000, 1000), mode: str = "RGB", **save: Any
) -> bytes:
    """A picture whose left half is red and right half blue, so turning it shows."""
    image = Image.new("RGBA", size, (0, 0, 255, 128 if mode == "RGBA" else 255))
    image.paste((255, 0, 0, 128 if mode == "RGBA" else 255), (0, 0, size[0] // 2, size[1]))
    image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def products_settings(products_db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=products_db_url,
        environment="test",
        workers_enabled=False,
        image_dir=tmp_path / "images",
        public_url=PUBLIC + "/",  # the trailing slash is dropped
    )


async def upload(
    client: httpx.AsyncClient,
    tokens: Tokens,
    product_id: str,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    main: bool | None = None,
) -> httpx.Response:
    form = {} if main is None else {"main": "true" if main else "false"}
    return await client.post(
        f"/products/{product_id}/images",
        files={"file": (filename, data, content_type)},
        data=form,
        headers=tokens.admin(),
    )


async def fetch(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    assert url.startswith(PUBLIC + "/images/")
    return await client.get(url.removeprefix(PUBLIC), headers=headers)


def stored_original(settings: Settings, data: bytes, extension: str) -> Path:
    """Where the store keeps the upload ``data`` as sent (it has no URL)."""
    content_hash = hashlib.sha256(data).hexdigest()
    return settings.image_dir / content_hash[:2] / content_hash / f"original.{extension}"


def stored_files(settings: Settings) -> set[str]:
    root = settings.image_dir
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    ("fmt", "extension", "mode"),
    [("JPEG", "jpg", "RGB"), ("PNG", "png", "RGBA"), ("WEBP", "webp", "RGB")],
)
async def test_upload_makes_webp_variants_served_as_immutable(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
    fmt: str,
    extension: str,
    mode: str,
) -> None:
    product = await products_catalogue.product()
    original = picture(fmt, (2000, 1000), mode)
    response = await upload(products_client, products_tokens, product["id"], original)
    assert response.status_code == 201, response.text
    image = response.json()
    assert response.headers["Location"] == f"/products/{product['id']}/images/{image['id']}"
    assert set(image) == {"id", "position", "main", "width", "height", "urls"}
    assert (image["position"], image["main"], image["width"], image["height"]) == (
        0,
        True,
        2000,
        1000,
    )
    assert set(image["urls"]) == {"thumbnail", "card", "full"}  # no original

    for variant, width in (("thumbnail", 160), ("card", 480), ("full", 1200)):
        served = await fetch(products_client, image["urls"][variant])
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/webp"
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        picture_served = decoded(served.content)
        assert picture_served.format == "WEBP"
        assert picture_served.size == (width, width // 2)
        assert picture_served.mode == ("RGBA" if mode == "RGBA" else "RGB")
        again = await fetch(
            products_client, image["urls"][variant], **{"If-None-Match": served.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == served.headers["etag"]

    # The original is kept as uploaded, byte for byte, beside the variants...
    kept = stored_original(products_settings, original, extension)
    assert kept.read_bytes() == original
    key = kept.relative_to(products_settings.image_dir).as_posix()
    assert image["urls"]["full"] == f"{PUBLIC}/images/{key.rsplit('/', 1)[0]}/full.webp"
    # ...but never served: its key is answered like any address that is not a variant.
    for headers in ({}, {"If-None-Match": f'"{key.replace("/", "-")}"'}):
        refused = await products_client.get(f"/images/{key}", headers=headers)
        assert refused.status_code == 404
        assert refused.json()["code"] == "image_not_found"
        assert original not in refused.content


async def test_small_images_are_never_enlarged(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_catalogue: Catalogue
) -> None:
    product = await products_catalogue.product()
    response = await upload(
        products_client, products_tokens, product["id"], picture("PNG", (300, 200))
    )
    assert response.status_code == 201, response.text
    urls = response.json()["urls"]
    sizes = {
        variant: decoded((await fetch(products_client, urls[variant])).content).size
        for variant in ("thumbnail", "card", "full")
    }
    assert sizes == {"thumbnail": (160, 107), "card": (300, 200), "full": (300, 200)}


async def test_exif_rotated_jpeg_comes_out_upright_and_its_gps_stays_private(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
) -> None:
    # Stored 400 x 200 (red left, blue right) with orientation 6: shown turned 90° clockwise,
    # so upright it is 200 x 400 with red on top. Taken at home: the EXIF says where.
    exif = Image.Exif()
    exif[0x0112] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (13.0, 24.0, 36.0)
    data = picture("JPEG", (400, 200), exif=exif.tobytes(), quality=95)
    product = await products_catalogue.product()
    response = await upload(products_client, products_tokens, product["id"], data)
    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["width"], image["height"]) == (200, 400)
    full = decoded((await fetch(products_client, image["urls"]["full"])).content).convert("RGB")
    assert full.size == (200, 400)
    top, bottom = full.getpixel((100, 50)), full.getpixel((100, 350))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # red
    assert bottom[2] > 200 and bottom[0] < 60  # blue
    assert set(image["urls"]) == {"thumbnail", "card", "full"}
    for url in image["urls"].values():
        variant = decoded((await fetch(products_client, url)).content)
        assert "exif" not in variant.info and "xmp" not in variant.info
        assert dict(variant.getexif()) == {}
    # The original keeps its EXIF, position included, in the store only.
    kept = stored_original(products_settings, data, "jpg")
    assert kept.read_bytes() == data
    assert decoded(kept.read_bytes()).getexif().get_ifd(ExifTags.IFD.GPSInfo)[
        ExifTags.GPS.GPSLatitude
    ] == (52.0, 31.0, 12.0)


async def test_the_content_decides_not_the_name_or_type(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
) -> None:
    product = await products_catalogue.product()
    data = picture("PNG", (64, 64))
    response = await upload(
        products_client,
        products_tokens,
        product["id"],
        data,
        filename="photo.jpg",
        content_type="image/jpeg",
    )
    assert response.status_code == 201, response.text
    assert stored_original(products_settings, data, "png").read_bytes() == data
    assert not stored_original(products_settings, data, "jpg").exists()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"just some text, not a picture\n" * 20, id="text"),
        pytest.param(picture("GIF", (64, 64), "P"), id="gif"),
        pytest.param(picture("JPEG", (800, 600))[:1500], id="truncated-jpeg"),
        pytest.param(picture("PNG", (800, 600))[:300], id="truncated-png"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', id="svg"),
        pytest.param(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, id="jpeg-magic-then-junk"),
    ],
)
async def test_anything_but_a_readable_jpeg_png_or_webp_is_unsupported_image(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
    data: bytes,
) -> None:
    product = await products_catalogue.product()
    response = await upload(
        products_client, products_tokens, product["id"], data, filename="image.jpg"
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "unsupported_image"
    assert (await products_client.get(f"/products/{product['id']}")).json()["images"] == []
    assert stored_files(products_settings) == set()


async def test_a_pixel_bomb_is_refused_before_it_is_decoded(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_catalogue: Catalogue
) -> None:
    product = await products_catalogue.product()
    for width, height in ((20_000, 20_000), (8_000, 6_000)):  # past Pillow's limit; past ours
        bomb = png_declaring(width, height)
        assert len(bomb) < 200
        response = await upload(products_client, products_tokens, product["id"], bomb)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "image_too_many_pixels"


async def test_the_pixel_limit_is_a_setting(
    products_db: Database,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
    products_tokens: Tokens,
) -> None:
    settings = products_settings.model_copy(update={"image_max_pixels": 100 * 100})
    async with client_of(settings, products_verifier, products_clock) as client:
        product = await Catalogue(client, products_tokens).product()
        over = await upload(client, products_tokens, product["id"], picture("PNG", (101, 100)))
        at = await upload(client, products_tokens, product["id"], picture("PNG", (100, 100)))
    assert over.status_code == 422 and over.json()["code"] == "image_too_many_pixels"
    assert at.status_code == 201, at.text


class CountingBody:
    """A streamed upload that counts how much of itself was read."""

    def __init__(self, head: bytes, total: int, chunk: int = 64 * 1024) -> None:
        self.head, self.total, self.chunk, self.sent = head, total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        self.sent += len(self.head)
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"\0" * self.chunk


async def test_an_upload_over_the_byte_limit_is_413_and_not_read_to_its_end(
    products_db: Database,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
    products_tokens: Tokens,
) -> None:
    limit = 256 * 1024
    settings = products_settings.model_copy(update={"image_max_bytes": limit})
    async with client_of(settings, products_verifier, products_clock) as client:
        product = await Catalogue(client, products_tokens).product()
        path = f"/products/{product['id']}/images"
        boundary = "pasar-test-boundary"
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=big.jpg\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        body = CountingBody(head, total=64 * 1024 * 1024)
        streamed = await client.post(
            path,
            content=body,
            headers={
                **products_tokens.admin(),
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        # Declared too large: refused before any of it is read.
        declared = await client.post(
            path,
            content=b"x" * 1024,
            headers={
                **products_tokens.admin(),
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(64 * 1024 * 1024),
            },
        )
        # Just over the limit inside a body the allowance lets through: the file's own size.
        just_over = await upload(
            client, products_tokens, product["id"], picture("PNG", (8, 8)) + b"\0" * limit
        )
        fits = await upload(client, products_tokens, product["id"], picture("JPEG", (64, 64)))
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["code"] == "image_too_large"
    assert body.sent < 2 * limit  # stopped near the limit, not after 64 MiB
    assert declared.status_code == 413 and declared.json()["code"] == "image_too_large"
    assert just_over.status_code == 413 and just_over.json()["code"] == "image_too_large"
    assert fits.status_code == 201, fits.text


async def test_other_bodies_keep_the_ordinary_limit(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_settings: Settings
) -> None:
    response = await products_client.post(
        "/products",
        content=b"{" + b" " * products_settings.max_body_bytes + b"}",
        headers={**products_tokens.admin(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_missing_file_field_is_a_validation_error(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_catalogue: Catalogue
) -> None:
    product = await products_catalogue.product()
    path = f"/products/{product['id']}/images"
    admin = products_tokens.admin()
    for response in (
        await products_client.post(
            path, files={"picture": ("a.jpg", picture(), "image/jpeg")}, headers=admin
        ),
        await products_client.post(path, data={"file": "not a file"}, headers=admin),
        await products_client.post(path, json={"file": "x"}, headers=admin),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"


async def test_only_admins_change_images_and_unknown_products_are_404(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_catalogue: Catalogue
) -> None:
    product = await products_catalogue.product()
    path = f"/products/{product['id']}/images"
    files = {"file": ("a.jpg", picture("JPEG", (64, 64)), "image/jpeg")}
    assert (await products_client.post(path, files=files)).status_code == 401
    customer = await products_client.post(path, files=files, headers=products_tokens.customer())
    assert customer.status_code == 403
    created = await upload(
        products_client, products_tokens, product["id"], picture("JPEG", (64, 64))
    )
    image_path = f"{path}/{created.json()['id']}"
    assert (await products_client.patch(image_path, json={"main": True})).status_code == 401
    assert (
        await products_client.delete(image_path, headers=products_tokens.customer())
    ).status_code == 403

    for unknown in ("no-such-product", "x" * 300):
        response = await upload(
            products_client, products_tokens, unknown, picture("JPEG", (64, 64))
        )
        assert response.status_code == 404 and response.json()["code"] == "product_not_found"
        listed = await products_client.get(f"/products/{unknown}/images")
        assert listed.status_code == 404 and listed.json()["code"] == "product_not_found"
    for method in ("PATCH", "DELETE"):
        missing = await products_client.request(
            method, f"{path}/no-such-image", headers=products_tokens.admin(), json={"main": True}
        )
        assert missing.status_code == 404 and missing.json()["code"] == "image_not_found"


async def test_order_main_and_etag(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_catalogue: Catalogue
) -> None:
    product = await products_catalogue.product(image_url="https://img.example/given.jpg")
    pid = product["id"]
    etags = [(await products_client.get(f"/products/{pid}")).headers["etag"]]
    ids = []
    for colour in ("red", "green", "blue"):
        image = Image.new("RGB", (40, 30), colour)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        response = await upload(products_client, products_tokens, pid, buffer.getvalue())
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        etags.append((await products_client.get(f"/products/{pid}")).headers["etag"])
    listed = (await products_client.get(f"/products/{pid}/images")).json()
    assert [image["id"] for image in listed] == ids
    assert [image["position"] for image in listed] == [0, 1, 2]
    assert [image["main"] for image in listed] == [True, False, False]

    # main=true on upload puts the new one first.
    first = await upload(
        products_client, products_tokens, pid, picture("JPEG", (50, 50)), main=True
    )
    assert first.status_code == 201 and first.json()["main"] is True
    ids.insert(0, first.json()["id"])
    etags.append((await products_client.get(f"/products/{pid}")).headers["etag"])

    admin = products_tokens.admin()
    made_main = await products_client.patch(
        f"/products/{pid}/images/{ids[2]}", json={"main": True}, headers=admin
    )
    assert made_main.status_code == 200, made_main.text
    assert (made_main.json()["position"], made_main.json()["main"]) == (0, True)
    ids = [ids[2], ids[0], ids[1], ids[3]]
    etags.append((await products_client.get(f"/products/{pid}")).headers["etag"])

    moved = await products_client.patch(
        f"/products/{pid}/images/{ids[0]}", json={"position": 99}, headers=admin
    )
    assert moved.status_code == 200 and moved.json()["position"] == 3
    ids = [*ids[1:], ids[0]]
    etags.append((await products_client.get(f"/products/{pid}")).headers["etag"])

    read = await products_client.get(f"/products/{pid}")
    body = read.json()
    assert [image["id"] for image in body["images"]] == ids
    assert [image["position"] for image in body["images"]] == [0, 1, 2, 3]
    assert body["image_url"] == body["images"][0]["urls"]["full"]  # the upload wins
    assert len(set(etags)) == len(etags)  # every change made a new ETag

    for bad in ({"position": -1}, {"main": False}, {"position": "1"}, {"colour": "red"}):
        refused = await products_client.patch(
            f"/products/{pid}/images/{ids[0]}", json=bad, headers=admin
        )
        assert refused.status_code == 422, bad


async def test_too_many_images(
    products_db: Database,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
    products_tokens: Tokens,
) -> None:
    settings = products_settings.model_copy(update={"image_max_per_product": 2})
    async with client_of(settings, products_verifier, products_clock) as client:
        product = await Catalogue(client, products_tokens).product()
        answers = [
            await upload(client, products_tokens, product["id"], picture("JPEG", (32 + n, 32)))
            for n in range(3)
        ]
    assert [answer.status_code for answer in answers] == [201, 201, 409]
    assert answers[2].json()["code"] == "too_many_images"
    assert answers[2].json()["limit"] == 2


async def test_delete_removes_files_no_other_image_uses(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
) -> None:
    shared, alone = picture("JPEG", (300, 300)), picture("PNG", (300, 200))
    one, two = await products_catalogue.product(), await products_catalogue.product()
    a = (await upload(products_client, products_tokens, one["id"], shared)).json()
    b = (await upload(products_client, products_tokens, two["id"], shared)).json()
    c = (await upload(products_client, products_tokens, one["id"], alone)).json()
    assert a["urls"] == b["urls"]  # the same bytes are stored once
    assert len(stored_files(products_settings)) == 8  # 2 x (original + 3 variants)

    admin = products_tokens.admin()
    gone = await products_client.delete(f"/products/{one['id']}/images/{a['id']}", headers=admin)
    assert gone.status_code == 204
    # Still used by the other product: every file stays.
    assert len(stored_files(products_settings)) == 8
    assert (await fetch(products_client, b["urls"]["card"])).status_code == 200
    left = (await products_client.get(f"/products/{one['id']}")).json()["images"]
    assert [(image["id"], image["position"], image["main"]) for image in left] == [
        (c["id"], 0, True)
    ]

    gone = await products_client.delete(f"/products/{one['id']}/images/{c['id']}", headers=admin)
    assert gone.status_code == 204
    assert len(stored_files(products_settings)) == 4
    for url in c["urls"].values():
        missing = await fetch(products_client, url)
        assert missing.status_code == 404 and missing.json()["code"] == "image_not_found"
    again = await products_client.delete(f"/products/{one['id']}/images/{c['id']}", headers=admin)
    assert again.status_code == 404
    # Another product's image is not this product's to delete.
    foreign = await products_client.delete(f"/products/{one['id']}/images/{b['id']}", headers=admin)
    assert foreign.status_code == 404
    assert (await products_client.get(f"/products/{one['id']}")).json()["image_url"] is None


async def test_listing_and_detail_carry_the_images(
    products_client: httpx.AsyncClient, products_tokens: Tokens, products_catalogue: Catalogue
) -> None:
    with_image = await products_catalogue.product(name="A with image")
    without = await products_catalogue.product(
        name="B without", image_url="https://img.example/b.jpg"
    )
    before = (await products_client.get("/products")).json()  # fills the page cache
    assert [item["images"] for item in before["items"]] == [[], []]
    uploaded = await upload(
        products_client, products_tokens, with_image["id"], picture("WEBP", (600, 600))
    )
    assert uploaded.status_code == 201

    page = (await products_client.get("/products")).json()  # not the cached page
    items = {item["id"]: item for item in page["items"]}
    assert items[with_image["id"]]["images"] == [uploaded.json()]
    assert items[with_image["id"]]["image_url"] == uploaded.json()["urls"]["full"]
    assert items[with_image["id"]]["image_url"].startswith(PUBLIC + "/images/")
    assert items[without["id"]]["images"] == []
    assert items[without["id"]]["image_url"] == "https://img.example/b.jpg"
    detail = (await products_client.get(f"/products/{with_image['id']}")).json()
    assert detail == items[with_image["id"]]
    archived_view = await products_client.get(
        "/products?include_archived=true", headers=products_tokens.admin()
    )
    assert {item["id"]: item for item in archived_view.json()["items"]} == items
    low = await products_client.get(
        "/admin/low-stock?threshold=100", headers=products_tokens.admin()
    )
    assert {item["id"]: item["images"] for item in low.json()["items"]}[with_image["id"]] == [
        uploaded.json()
    ]


class BrokenStore:
    """A store whose disk is full."""

    async def put(self, key: str, data: bytes) -> None:
        raise StorageError("no space left on device")

    async def get(self, key: str) -> bytes | None:
        return None

    async def exists(self, key: str) -> bool:
        return False

    async def delete(self, key: str) -> None:
        raise StorageError("no space left on device")


async def test_a_failing_store_leaves_no_row_and_no_etag_change(
    products_app: FastAPI,
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_db: Database,
) -> None:
    product = await products_catalogue.product()
    etag = (await products_client.get(f"/products/{product['id']}")).headers["etag"]
    products_app.state.runtime.images = BrokenStore()
    response = await upload(
        products_client, products_tokens, product["id"], picture("JPEG", (64, 64))
    )
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "dependency_unavailable"
    async with products_db.read() as conn:
        rows = (await conn.execute(product_images.select())).all()
    assert rows == []
    assert (await products_client.get(f"/products/{product['id']}")).headers["etag"] == etag


async def test_a_failed_row_write_removes_the_files_it_stored(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing_insert(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the database went away mid-write")

    product = await products_catalogue.product()
    monkeypatch.setattr(images, "insert_image", failing_insert)
    response = await upload(
        products_client, products_tokens, product["id"], picture("JPEG", (64, 64))
    )
    assert response.status_code == 500
    assert stored_files(products_settings) == set()


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "ab/../../secrets.json",
        "ab/" + "ab" * 32 + "/../../x",
        "cd/" + "ab" * 32 + "/card.webp",  # prefix does not match the hash
        "ab/" + "ab" * 32 + "/card.png",
        "ab/" + "AB" * 32 + "/card.webp",
        "ab/" + "ab" * 32 + "/original.gif",
        "%2e%2e/%2e%2e/etc/passwd",
        "ab/" + "ab" * 32 + "/card.webp",  # well formed, but nothing is stored there
    ],
)
async def test_image_files_are_only_ever_our_keys(
    products_client: httpx.AsyncClient, key: str
) -> None:
    response = await products_client.get(f"/images/{key}")
    assert response.status_code == 404
    assert response.json()["code"] in {"image_not_found", "not_found"}


@asynccontextmanager
async def client_of(
    settings: Settings, verifier: TokenVerifier, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app built with ``settings``."""
    app = create_app(settings, verifier=verifier, clock=clock)
    async with lifespan_of(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
            yield client


class CountingStore(LocalImageStore):
    """The real directory, counting what is written."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    async def put(self, key: str, data: bytes) -> None:
        self.puts.append(key)
        await super().put(key, data)


async def test_the_same_bytes_twice_are_stored_once(
    products_app: FastAPI,
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    products_catalogue: Catalogue,
    products_settings: Settings,
) -> None:
    store = CountingStore(products_settings.image_dir)
    products_app.state.runtime.images = store
    data = picture("JPEG", (300, 200))
    one, two = await products_catalogue.product(), await products_catalogue.product()
    first = await upload(products_client, products_tokens, one["id"], data)
    written = list(store.puts)
    second = await upload(products_client, products_tokens, two["id"], data)
    assert first.status_code == second.status_code == 201
    assert len(written) == 4  # the original and three variants
    assert store.puts == written  # nothing written again
    assert first.json()["urls"] == second.json()["urls"]
    assert first.json()["id"] != second.json()["id"]


async def test_uploads_at_once_keep_the_limit_and_a_gapless_order(
    products_db: Database,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
    products_tokens: Tokens,
) -> None:
    settings = products_settings.model_copy(update={"image_max_per_product": 3})
    async with client_of(settings, products_verifier, products_clock) as client:
        catalogue = Catalogue(client, products_tokens)
        crowded = await catalogue.product()
        others = [await catalogue.product() for _ in range(4)]
        pictures = [picture("PNG", (40 + n, 40)) for n in range(6)]
        answers = await asyncio.gather(
            *(upload(client, products_tokens, crowded["id"], data, main=True) for data in pictures),
            # Main images of other products at the same moment: no deadlock between them.
            *(
                upload(client, products_tokens, other["id"], pictures[0], main=True)
                for other in others
            ),
        )
        crowded_answers, other_answers = answers[:6], answers[6:]
        assert sorted(answer.status_code for answer in crowded_answers) == [201] * 3 + [409] * 3
        assert [answer.status_code for answer in other_answers] == [201] * 4
        listed = (await client.get(f"/products/{crowded['id']}/images")).json()
    assert [image["position"] for image in listed] == [0, 1, 2]
    assert {image["id"] for image in listed} == {
        answer.json()["id"] for answer in crowded_answers if answer.status_code == 201
    }
