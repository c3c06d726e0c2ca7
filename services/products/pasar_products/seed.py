"""A demo catalogue for ``pasar up``: a few dozen plausible products, prices in IDR.

Prices are whole rupiah, as the API counts IDR: ``92_000`` is Rp 92.000.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from pasar_kit.db import Database, looking_again, utcnow
from pasar_products.catalogue import insert_product
from pasar_products.tables import products

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


async def seed_demo_catalogue(*, db: Database, now: datetime | None = None) -> int:
    """Insert the demo products that are not there yet (by SKU); how many it inserted.

    Two seeders at once (two ``pasar up`` on one server database) each insert a product
    once: the one whose insert meets the other's SKU looks again and skips it.
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

    return await looking_again(attempt)
