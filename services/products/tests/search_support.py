"""A small, realistic Indonesian catalogue for the search tests, and its synonym rules.

Each product is known by its SKU; the tests ask for SKUs in result order.
"""

from __future__ import annotations

from typing import Any

import httpx
from products_support import Catalogue

# (sku, name, category, price in rupiah, description)
PRODUCTS: tuple[tuple[str, str, str, int, str], ...] = (
    ("KOPI-GAYO", "Kopi Arabika Gayo 250 g", "Minuman", 95_000,
     "Biji kopi arabika dari dataran tinggi Aceh."),
    ("KOPI-TORAJA", "Kopi Toraja Kalosi 250 g", "Minuman", 92_000,
     "Kopi bubuk dengan rasa cokelat."),
    ("KOPI-SUSU", "Kopi Susu Gula Aren", "Minuman", 25_000, "Minuman siap saji dalam botol."),
    ("TEH-MELATI", "Teh Melati Celup 25 Kantong", "Minuman", 12_000, "Teh hijau wangi melati."),
    ("TEH-TARIK", "Teh Tarik Instan", "Minuman", 30_000, "Minuman teh susu manis."),
    ("SUSU-UHT", "Susu UHT Cokelat 1 L", "Minuman", 19_000, "Susu sapi segar."),
    ("JUS-JERUK", "Jus Jeruk Segar", "Minuman", 22_000, "Minuman buah tanpa pengawet."),
    ("COFFEE-BEANS", "Coffee Beans Espresso Blend", "Minuman", 120_000,
     "Roasted beans for espresso."),
    ("SAMBAL-BAWANG", "Sambal Bawang Pedas", "Makanan", 28_000, "Sambal khas Jawa Timur."),
    ("KERIPIK-SINGKONG", "Keripik Singkong Balado", "Makanan", 15_000,
     "Camilan renyah pedas manis."),
    ("MADU-HUTAN", "Madu Hutan Murni 500 ml", "Makanan", 85_000, "Madu asli dari Sumbawa."),
    ("BERAS-PANDAN", "Beras Pandan Wangi 5 kg", "Makanan", 78_000, "Beras pulen."),
    ("GULA-AREN", "Gula Aren Cair 500 ml", "Makanan", 35_000,
     "Pemanis alami untuk kopi dan kue."),
    ("MIE-GORENG", "Mie Goreng Instan Isi 5", "Makanan", 14_000, "Makanan cepat saji."),
    ("RENDANG", "Rendang Daging Sapi Kaleng", "Makanan", 65_000, "Masakan Padang siap makan."),
    ("SEPATU-LARI", "Sepatu Lari Ringan Pria", "Olahraga", 450_000,
     "Sepatu untuk berlari jarak jauh."),
    ("SEPATU-BOLA", "Sepatu Bola Anak", "Olahraga", 275_000, "Sol karet untuk lapangan rumput."),
    ("RUNNING-SHOES", "Running Shoes Wanita", "Olahraga", 520_000,
     "Lightweight shoes for daily runs."),
    ("RAKET-BADMINTON", "Raket Badminton Karbon", "Olahraga", 365_000,
     "Raket ringan untuk pemula."),
    ("MATRAS-YOGA", "Matras Yoga 6 mm", "Olahraga", 159_000, "Matras antiselip."),
    ("BOTOL-MINUM", "Botol Minum Baja 750 ml", "Olahraga", 119_000,
     "Botol untuk minuman dingin."),
    ("KAOS-LARI", "Kaos Lari Dry Fit", "Olahraga", 99_000, "Kaos olahraga untuk pelari."),
    ("TREADMILL", "Treadmill Elektrik Lipat", "Olahraga", 4_500_000, "Alat lari di rumah."),
    ("HP-SAMSUNG-A15", "Samsung Galaxy A15 Handphone 128 GB", "Elektronik", 2_300_000,
     "Ponsel layar besar."),
    ("HP-XIAOMI", "Xiaomi Redmi 13 Ponsel 8/256", "Elektronik", 2_100_000,
     "Handphone baterai besar."),
    ("SAMSUNG-TV", "Samsung Smart TV 43 inci", "Elektronik", 4_200_000, "Televisi LED."),
    ("CHARGER-USB", "Charger USB-C 25W", "Elektronik", 150_000,
     "Pengisi daya cepat untuk handphone."),
    ("EARBUDS", "Earbuds Bluetooth Nirkabel", "Elektronik", 250_000, "Suara jernih."),
    ("POWERBANK", "Powerbank 10000 mAh", "Elektronik", 180_000,
     "Isi ulang handphone di perjalanan."),
    ("KABEL-DATA", "Kabel Data Micro USB 1 m", "Elektronik", 25_000, "Kabel pengisian."),
    ("LAMPU-LED", "Lampu LED 12 Watt", "Elektronik", 30_000, "Hemat listrik."),
    ("KIPAS-ANGIN", "Kipas Angin Berdiri", "Elektronik", 350_000, "Pendingin ruangan hemat."),
    ("PEMBERSIH-LANTAI", "Pembersih Lantai Wangi Lavender 800 ml", "Rumah Tangga", 18_000,
     "Membersihkan dan mengharumkan lantai."),
    ("SABUN-CUCI", "Sabun Cuci Piring Jeruk", "Rumah Tangga", 15_000,
     "Bersih tanpa sisa lemak."),
    ("PANCI-PRESTO", "Panci Presto 8 Liter", "Rumah Tangga", 425_000,
     "Masak daging cepat empuk."),
    ("WAJAN", "Wajan Anti Lengket 28 cm", "Rumah Tangga", 189_000,
     "Penggorengan dengan lapisan keramik."),
    ("SAPU-IJUK", "Sapu Ijuk Gagang Panjang", "Rumah Tangga", 35_000, "Alat pembersih rumah."),
    ("TIKAR-PANDAN", "Tikar Pandan Anyaman", "Rumah Tangga", 120_000, "Kerajinan tangan."),
    ("TOPLES-KACA", "Toples Kaca Kedap Udara", "Rumah Tangga", 45_000,
     "Penyimpanan makanan kering."),
    ("SETRIKA", "Setrika Uap Portabel", "Rumah Tangga", 275_000, "Pemanas cepat."),
    ("BATIK-PRIA", "Kemeja Batik Pria Lengan Panjang", "Fashion", 225_000, "Batik tulis Solo."),
    ("KAOS-POLOS", "Kaos Polos Katun Hitam", "Fashion", 59_000, "Baju santai sehari-hari."),
    ("TAS-RANSEL", "Tas Ransel Laptop 15 inci", "Fashion", 299_000, "Tahan air."),
    ("LEATHER-BAG", "Leather Bag Premium", "Fashion", 890_000, "Genuine leather shoulder bag."),
    ("SANDAL-JEPIT", "Sandal Jepit Karet", "Fashion", 20_000, "Nyaman dipakai."),
    ("SARUNG-TENUN", "Sarung Tenun Samarinda", "Fashion", 175_000, "Tenunan tangan."),
    ("TOPI-BASEBALL", "Topi Baseball Hitam", "Fashion", 65_000, "Topi katun."),
    ("JAM-TANGAN", "Jam Tangan Digital Sport", "Fashion", 310_000,
     "Tahan air untuk olahraga lari."),
    ("MINYAK-KAYU-PUTIH", "Minyak Kayu Putih 60 ml", "Kesehatan", 27_000,
     "Menghangatkan badan."),
    ("JAMU-KUNYIT", "Jamu Kunyit Asam", "Kesehatan", 12_000, "Minuman tradisional segar."),
    ("MASKER", "Masker Medis 50 pcs", "Kesehatan", 40_000, "Pelindung harian."),
    ("LULUR", "Lulur Mandi Bengkoang", "Kesehatan", 32_000, "Membersihkan kulit mati."),
    ("VITAMIN-C", "Vitamin C 1000 mg", "Kesehatan", 55_000, "Menjaga daya tahan tubuh."),
    ("SABUN-MANDI", "Sabun Mandi Sereh", "Kesehatan", 9_000, "Sabun batang alami."),
    ("BONEKA", "Boneka Beruang Besar", "Mainan", 150_000, "Mainan lembut untuk anak."),
    ("PUZZLE", "Puzzle Kayu Peta Indonesia", "Mainan", 75_000, "Permainan edukasi anak."),
    ("MOBIL-REMOTE", "Mobil Remote Control Offroad", "Mainan", 350_000, "Mainan mobil anak."),
    ("BUKU-RESEP", "Buku Resep Masakan Nusantara", "Buku", 98_000,
     "Kumpulan resep makanan daerah."),
    ("NOVEL", "Novel Laskar Pelangi", "Buku", 79_000, "Karya Andrea Hirata."),
    ("BUKU-TULIS", "Buku Tulis 38 Lembar isi 10", "Buku", 42_000, "Kertas putih bergaris."),
)  # fmt: skip

# Archived: never found by the public search.
ARCHIVED = ("KOPI-LUWAK-LAMA", "Kopi Luwak Lama", "Minuman", 500_000, "Stok lama.")

# The rules the judged queries rely on (tests empty every table, the seeded rules too).
SYNONYMS = {
    "hp": ["handphone", "ponsel"],
    "sepatu": ["shoes"],
    "shoes": ["sepatu"],
    "tas": ["bag"],
    "kopi": ["coffee"],
}


async def stock_shop(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    """Create the catalogue (and the archived product) and the synonym rules; the
    products by SKU."""
    admin = catalogue.tokens.admin()
    made = {}
    for sku, name, category, price, description in (*PRODUCTS, ARCHIVED):
        made[sku] = await catalogue.product(
            sku=sku, name=name, category=category, price=price, description=description, stock=5
        )
    gone = await catalogue.client.delete(f"/products/{made[ARCHIVED[0]]['id']}", headers=admin)
    assert gone.status_code == 204
    for term, expands_to in SYNONYMS.items():
        rule = await catalogue.client.put(
            f"/admin/search/synonyms/{term}", json={"expands_to": expands_to}, headers=admin
        )
        assert rule.status_code == 200, rule.text
    return made


async def search(client: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/products", params={"q": q, "limit": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def skus(page: dict[str, Any]) -> list[str]:
    return [item["sku"] for item in page["items"]]
