"""A demo catalogue for ``pasar up``: a few dozen plausible products, prices in IDR, each
with a picture drawn here (its category's colour and pattern, its name in large type),
so the demo shop looks like a shop without downloading anything.

Prices are whole rupiah, as the API counts IDR: ``92_000`` is Rp 92.000.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import textwrap
from collections.abc import Callable
from datetime import datetime

import anyio
import anyio.to_thread
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from pasar_kit.db import Database, looking_again, retrying, utcnow
from pasar_products.catalogue import insert_product
from pasar_products.images import insert_image, prepare_image, store_files
from pasar_products.imaging import ProcessedImage
from pasar_products.problems import TooManyImages
from pasar_products.storage import ImageStore
from pasar_products.tables import product_images, products

# (sku, name, category, price in rupiah, stock, description)
_DEMO: tuple[tuple[str, str, str, int, int, str], ...] = (
    (
        "KOPI-GAYO-250",
        "Kopi Arabika Gayo 250 g",
        "Makanan & Minuman",
        85_000,
        120,
        "Biji kopi arabika dari dataran tinggi Gayo, sangrai medium.",
    ),
    (
        "KOPI-TORAJA-250",
        "Kopi Toraja Kalosi 250 g",
        "Makanan & Minuman",
        92_000,
        80,
        "Kopi bubuk Toraja dengan rasa rempah dan cokelat.",
    ),
    (
        "TEH-MELATI-50",
        "Teh Melati Tubruk 50 g",
        "Makanan & Minuman",
        12_500,
        300,
        "Teh hijau beraroma melati, seduh tubruk.",
    ),
    (
        "SAMBAL-BAWANG-200",
        "Sambal Bawang Pedas 200 g",
        "Makanan & Minuman",
        28_000,
        150,
        "Sambal bawang goreng, pedas mantap, tanpa pengawet.",
    ),
    (
        "KERIPIK-SINGKONG-150",
        "Keripik Singkong Balado 150 g",
        "Makanan & Minuman",
        15_000,
        200,
        "Keripik singkong renyah dengan bumbu balado.",
    ),
    (
        "MADU-HUTAN-500",
        "Madu Hutan Sumbawa 500 ml",
        "Makanan & Minuman",
        135_000,
        45,
        "Madu hutan murni dari Sumbawa.",
    ),
    (
        "GULA-AREN-500",
        "Gula Aren Cair 500 ml",
        "Makanan & Minuman",
        38_000,
        90,
        "Gula aren cair untuk kopi susu dan kue.",
    ),
    (
        "EARBUD-TWS-01",
        "Earbuds Nirkabel TWS",
        "Elektronik",
        349_000,
        60,
        "Earbuds Bluetooth 5.3 dengan casing pengisi daya, tahan percikan air.",
    ),
    (
        "POWERBANK-10K",
        "Power Bank 10.000 mAh",
        "Elektronik",
        199_000,
        75,
        "Pengisian cepat 22,5 W, dua port USB.",
    ),
    (
        "KABEL-USBC-1M",
        "Kabel USB-C 1 m",
        "Elektronik",
        45_000,
        250,
        "Kabel USB-C ke USB-C berlapis nilon, 60 W.",
    ),
    (
        "SPEAKER-BT-MINI",
        "Speaker Bluetooth Mini",
        "Elektronik",
        275_000,
        40,
        "Speaker portabel dengan baterai 12 jam.",
    ),
    (
        "LAMPU-LED-12W",
        "Lampu LED 12 W Putih",
        "Elektronik",
        32_000,
        400,
        "Lampu LED hemat energi, fitting E27.",
    ),
    (
        "KIPAS-MEJA-16",
        "Kipas Angin Meja 16 inci",
        "Elektronik",
        315_000,
        25,
        "Tiga kecepatan, kepala dapat berputar.",
    ),
    (
        "BATIK-PRIA-L",
        "Kemeja Batik Pria Lengan Panjang (L)",
        "Fashion",
        289_000,
        35,
        "Batik cap motif parang, katun primisima.",
    ),
    (
        "BATIK-WANITA-M",
        "Blus Batik Wanita (M)",
        "Fashion",
        245_000,
        30,
        "Blus batik motif kawung, potongan modern.",
    ),
    (
        "SARUNG-TENUN",
        "Sarung Tenun Samarinda",
        "Fashion",
        175_000,
        50,
        "Sarung tenun tangan khas Samarinda.",
    ),
    (
        "KAOS-POLOS-HITAM-M",
        "Kaos Polos Hitam (M)",
        "Fashion",
        59_000,
        180,
        "Kaos katun combed 30s, jahitan rapi.",
    ),
    (
        "SANDAL-JEPIT-42",
        "Sandal Jepit Karet (42)",
        "Fashion",
        25_000,
        220,
        "Sandal jepit karet alam yang awet.",
    ),
    (
        "TOPI-ANYAMAN",
        "Topi Anyaman Pandan",
        "Fashion",
        65_000,
        0,
        "Topi anyaman daun pandan buatan perajin Tasikmalaya.",
    ),
    ("TAS-KANVAS", "Tas Tote Kanvas", "Fashion", 89_000, 70, "Tas kanvas tebal dengan saku dalam."),
    (
        "PANCI-PRESTO-8L",
        "Panci Presto 8 L",
        "Rumah Tangga",
        425_000,
        20,
        "Panci bertekanan untuk melunakkan daging dan tulang ikan.",
    ),
    (
        "WAJAN-ANTILENGKET-28",
        "Wajan Antilengket 28 cm",
        "Rumah Tangga",
        179_000,
        45,
        "Lapisan antilengket, gagang tahan panas.",
    ),
    (
        "RICE-COOKER-1L",
        "Rice Cooker 1,8 L",
        "Rumah Tangga",
        389_000,
        30,
        "Memasak dan menghangatkan nasi, panci antilengket.",
    ),
    (
        "TIKAR-PANDAN",
        "Tikar Pandan 150 x 200 cm",
        "Rumah Tangga",
        120_000,
        25,
        "Tikar anyaman pandan yang sejuk.",
    ),
    ("SAPU-IJUK", "Sapu Ijuk", "Rumah Tangga", 35_000, 110, "Sapu ijuk dengan gagang kayu."),
    (
        "TOPLES-KACA-SET",
        "Set Toples Kaca (3 pcs)",
        "Rumah Tangga",
        99_000,
        55,
        "Toples kaca kedap udara untuk kue kering.",
    ),
    (
        "SABUN-SEREH-100",
        "Sabun Sereh Alami 100 g",
        "Kesehatan & Kecantikan",
        22_000,
        160,
        "Sabun batang dengan minyak sereh wangi.",
    ),
    (
        "MINYAK-KAYU-PUTIH-60",
        "Minyak Kayu Putih 60 ml",
        "Kesehatan & Kecantikan",
        27_500,
        300,
        "Minyak kayu putih asli dari Pulau Buru.",
    ),
    (
        "LULUR-BALI-200",
        "Lulur Tradisional Bali 200 g",
        "Kesehatan & Kecantikan",
        48_000,
        85,
        "Lulur bengkuang dan beras untuk kulit halus.",
    ),
    (
        "JAMU-KUNYIT-ASAM",
        "Jamu Kunyit Asam 250 ml",
        "Kesehatan & Kecantikan",
        12_000,
        140,
        "Jamu segar kunyit asam, diminum dingin.",
    ),
    (
        "MASKER-KAIN-3",
        "Masker Kain 3 Lapis (isi 3)",
        "Kesehatan & Kecantikan",
        30_000,
        200,
        "Masker kain yang dapat dicuci ulang.",
    ),
    (
        "SEPATU-LARI-42",
        "Sepatu Lari Ringan (42)",
        "Olahraga",
        549_000,
        18,
        "Sepatu lari dengan sol empuk dan upper bernapas.",
    ),
    (
        "BOLA-SEPAK-5",
        "Bola Sepak Ukuran 5",
        "Olahraga",
        185_000,
        40,
        "Bola jahit tangan untuk lapangan rumput.",
    ),
    (
        "RAKET-BADMINTON",
        "Raket Badminton Karbon",
        "Olahraga",
        365_000,
        22,
        "Raket ringan berbahan karbon, senar terpasang.",
    ),
    (
        "KOK-BULU-12",
        "Kok Bulu Angsa (isi 12)",
        "Olahraga",
        95_000,
        90,
        "Kok bulu angsa untuk latihan dan pertandingan.",
    ),
    (
        "MATRAS-YOGA-6MM",
        "Matras Yoga 6 mm",
        "Olahraga",
        159_000,
        35,
        "Matras TPE antiselip dengan tali pembawa.",
    ),
    (
        "BOTOL-MINUM-750",
        "Botol Minum Baja 750 ml",
        "Olahraga",
        119_000,
        65,
        "Botol baja tahan karat, menjaga dingin 24 jam.",
    ),
)


# A picture is this many pixels square: enough for the 480 px card and a sharp product
# page, small enough that drawing and resizing 37 of them takes about a second.
PICTURE_SIZE = 720

Pattern = Callable[[ImageDraw.ImageDraw, int, tuple[int, int, int]], None]


def _dots(draw: ImageDraw.ImageDraw, size: int, ink: tuple[int, int, int]) -> None:
    step = size // 8
    for row in range(9):
        for column in range(9):
            x, y = column * step + (step // 2 if row % 2 else 0), row * step
            draw.ellipse((x - 14, y - 14, x + 14, y + 14), fill=ink)


def _stripes(draw: ImageDraw.ImageDraw, size: int, ink: tuple[int, int, int]) -> None:
    for offset in range(-size, size, 72):
        draw.line((offset, 0, offset + size, size), fill=ink, width=22)


def _grid(draw: ImageDraw.ImageDraw, size: int, ink: tuple[int, int, int]) -> None:
    for position in range(0, size, 60):
        draw.line((position, 0, position, size), fill=ink, width=4)
        draw.line((0, position, size, position), fill=ink, width=4)
    for position in range(30, size, 120):
        draw.rectangle((position - 10, position - 10, position + 10, position + 10), fill=ink)


def _crosses(draw: ImageDraw.ImageDraw, size: int, ink: tuple[int, int, int]) -> None:
    step = size // 6
    for row in range(7):
        for column in range(7):
            x, y = column * step, row * step
            draw.rectangle((x - 26, y - 8, x + 26, y + 8), fill=ink)
            draw.rectangle((x - 8, y - 26, x + 8, y + 26), fill=ink)


def _rings(draw: ImageDraw.ImageDraw, size: int, ink: tuple[int, int, int]) -> None:
    centre = size // 2
    for radius in range(40, size, 70):
        draw.ellipse(
            (centre - radius, centre // 2 - radius, centre + radius, centre // 2 + radius),
            outline=ink,
            width=14,
        )


def _checks(draw: ImageDraw.ImageDraw, size: int, ink: tuple[int, int, int]) -> None:
    step = size // 9
    for row in range(9):
        for column in range(row % 2, 9, 2):
            draw.rectangle(
                (column * step, row * step, (column + 1) * step, (row + 1) * step), fill=ink
            )


# Each category's colour (RGB) and pattern, as the storefront's category tiles are.
_LOOKS: dict[str, tuple[tuple[int, int, int], Pattern]] = {
    "Makanan & Minuman": ((196, 98, 45), _dots),
    "Fashion": ((142, 68, 173), _stripes),
    "Elektronik": ((41, 98, 155), _grid),
    "Kesehatan & Kecantikan": ((46, 139, 117), _crosses),
    "Olahraga": ((211, 84, 0), _rings),
    "Rumah Tangga": ((121, 85, 72), _checks),
}
_DEFAULT_LOOK: tuple[tuple[int, int, int], Pattern] = ((90, 90, 90), _dots)


def demo_picture(name: str, category: str) -> bytes:
    """A PNG of the product: its category's colour (a shade of it per product) and
    pattern, and its name on a light panel."""
    (red, green, blue), pattern = _LOOKS.get(category, _DEFAULT_LOOK)
    # The same product always gets the same shade, so the seed is repeatable.
    shade = hashlib.sha256(name.encode()).digest()[0] / 255 * 0.3 - 0.15
    r, g, b = (max(0, min(255, round(c * (1 + shade)))) for c in (red, green, blue))
    size = PICTURE_SIZE
    image = Image.new("RGB", (size, size), (r, g, b))
    draw = ImageDraw.Draw(image)
    pattern(draw, size, (round(r * 0.82), round(g * 0.82), round(b * 0.82)))
    lines = textwrap.wrap(name, width=16)[:3]
    font = ImageFont.load_default(size=58)
    line_height = 70
    panel_top = size - 70 - line_height * len(lines)
    draw.rounded_rectangle((36, panel_top, size - 36, size - 36), radius=28, fill=(250, 247, 242))
    for index, line in enumerate(lines):
        draw.text(
            (size // 2, panel_top + 22 + line_height * index + line_height // 2),
            line,
            font=font,
            fill=(40, 33, 28),
            anchor="mm",
        )
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


async def seed_demo_catalogue(
    *, db: Database, store: ImageStore, now: datetime | None = None
) -> int:
    """Insert the demo products that are not there yet (by SKU), then give each demo
    product without an image its drawn picture; how many products it inserted.

    Two seeders at once (two ``pasar up`` on one server database) each insert a product
    once: the one whose insert meets the other's SKU looks again and skips it. A picture
    is added only to a product that has no image when its row is locked, so neither
    seeder adds a second one. A product whose images an admin deleted gets its picture
    back on the next seed.
    """
    moment = now or utcnow()
    skus = [sku for sku, *_ in _DEMO]

    async def attempt() -> int:
        async with db.write() as conn:
            existing = set(
                await conn.scalars(select(products.c.sku).where(products.c.sku.in_(skus)))
            )
            inserted = 0
            for sku, name, category, rupiah, stock, description in _DEMO:
                if sku in existing:
                    continue
                await insert_product(
                    conn,
                    fields={
                        "sku": sku,
                        "name": name,
                        "category": category,
                        "price": rupiah,
                        "stock": stock,
                        "description": description,
                    },
                    by=None,
                    now=moment,
                )
                inserted += 1
        return inserted

    inserted = await looking_again(attempt)
    await _picture_demo_products(db=db, store=store, skus=skus, now=moment)
    return inserted


async def _picture_demo_products(
    *, db: Database, store: ImageStore, skus: list[str], now: datetime
) -> None:
    pictured = select(product_images.c.product_id).distinct()
    async with db.read() as conn:
        bare = {
            sku: product_id
            for sku, product_id in await conn.execute(
                select(products.c.sku, products.c.id).where(
                    products.c.sku.in_(skus), products.c.id.not_in(pictured)
                )
            )
        }
    looks = {sku: (name, category) for sku, name, category, *_ in _DEMO if sku in bare}
    if not looks:
        return
    # Drawing and resizing is CPU work: two worker threads keep a 2-core machine busy.
    limiter = anyio.CapacityLimiter(2)

    async def picture(sku: str) -> None:
        name, category = looks[sku]
        data = await anyio.to_thread.run_sync(demo_picture, name, category, limiter=limiter)
        image = await prepare_image(data, max_pixels=PICTURE_SIZE**2, limiter=limiter)
        await _add_first(db=db, store=store, product_id=bare[sku], image=image, now=now)

    async with anyio.create_task_group() as group:
        for sku in looks:
            group.start_soon(picture, sku)


async def _add_first(
    *, db: Database, store: ImageStore, product_id: str, image: ProcessedImage, now: datetime
) -> None:
    """The product's first image, unless another seeder gave it one meanwhile."""
    await store_files(store, image)

    async def record() -> None:
        async with db.write() as conn:
            await insert_image(
                conn, product_id=product_id, image=image, main=True, max_per_product=1, now=now
            )

    with contextlib.suppress(TooManyImages):
        await retrying(record)
