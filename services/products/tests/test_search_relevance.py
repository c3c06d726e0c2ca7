"""Relevance, judged: twenty shopper queries over a small Indonesian catalogue and the
products a person would expect on top, in order where the order matters.

``top`` lists the SKUs expected first, in order; ``top_set`` those expected first in any
order (ties a person would not rank); ``also`` further SKUs that must be found; ``only``
means nothing else may be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from products_support import Catalogue
from search_support import search, skus, stock_shop


@dataclass(frozen=True)
class Judged:
    q: str
    top: list[str] = field(default_factory=list)
    top_set: set[str] = field(default_factory=set)
    also: set[str] = field(default_factory=set)
    only: bool = False
    corrected_q: str | None = None


JUDGED = [
    # A common word: the products named for it (the English name too, through the synonym
    # rule: a synonym ranks as the word itself) before the one that only mentions it in
    # its description; the archived one never.
    Judged("kopi", top_set={"KOPI-GAYO", "KOPI-TORAJA", "KOPI-SUSU", "COFFEE-BEANS"},
           also={"GULA-AREN"}, only=True),
    # A doubled letter: Sastrawi reads the final "i" as a suffix, so the stem is "kopi".
    Judged("kopii", top_set={"KOPI-GAYO", "KOPI-TORAJA", "KOPI-SUSU", "COFFEE-BEANS"},
           also={"GULA-AREN"}, only=True),
    # Two words: both must match.
    Judged("sepatu lari", top=["SEPATU-LARI"], only=True),
    # An inflected form finds the root: "berlari" -> "lari" (and "pelari").
    Judged("berlari", top_set={"SEPATU-LARI", "KAOS-LARI"},
           also={"TREADMILL", "JAM-TANGAN"}, only=True),
    # "minuman" -> "minum": the bottle named for it first, then the category.
    Judged("minuman", top=["BOTOL-MINUM"],
           also={"KOPI-GAYO", "TEH-TARIK", "JUS-JERUK", "JAMU-KUNYIT", "COFFEE-BEANS"}),
    # A slang word through a synonym, with a brand: the phone, not the TV.
    Judged("hp samsung", top=["HP-SAMSUNG-A15"], only=True),
    # "sepatu" also means "shoes".
    Judged("sepatu", top_set={"SEPATU-LARI", "SEPATU-BOLA", "RUNNING-SHOES"}, only=True),
    # A SKU, as typed.
    Judged("KOPI-TORAJA", top=["KOPI-TORAJA"], only=True),
    Judged("hp-samsung-a15", top=["HP-SAMSUNG-A15"], only=True),
    # Two words found in a name and a description.
    Judged("teh susu", top=["TEH-TARIK"], only=True),
    # "pembersih" and "bersih" share the root: the cleaner named for it first.
    Judged("pembersih", top=["PEMBERSIH-LANTAI"], also={"SABUN-CUCI", "SAPU-IJUK", "LULUR"},
           only=True),
    Judged("bersih", top=["PEMBERSIH-LANTAI"], also={"SABUN-CUCI", "SAPU-IJUK", "LULUR"},
           only=True),
    # Still typing: the last word is a prefix.
    Judged("kop", top_set={"KOPI-GAYO", "KOPI-TORAJA", "KOPI-SUSU"}, also={"GULA-AREN"}),
    Judged("kopi tor", top=["KOPI-TORAJA"], only=True),
    # Typos, corrected to the nearest word the catalogue has.
    Judged("samsnug", top_set={"HP-SAMSUNG-A15", "SAMSUNG-TV"}, only=True,
           corrected_q="samsung"),
    Judged("madu hutann", top=["MADU-HUTAN"], only=True, corrected_q="madu hutan"),
    # "tas" also means "bag".
    Judged("tas", top_set={"TAS-RANSEL", "LEATHER-BAG"}, only=True),
    # Two roots: "mainan" and "permainan" are both "main".
    Judged("mainan anak", top_set={"BONEKA", "MOBIL-REMOTE", "PUZZLE"}, only=True),
    # Case and word order do not matter.
    Judged("Batik KEMEJA", top=["BATIK-PRIA"], only=True),
    # A word in two names.
    Judged("jeruk", top_set={"JUS-JERUK", "SABUN-CUCI"}, only=True),
]  # fmt: skip


@pytest.fixture
async def shop(products_catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    return await stock_shop(products_catalogue)


@pytest.mark.parametrize("judged", JUDGED, ids=[j.q for j in JUDGED])
async def test_judged_query(
    shop: dict[str, dict[str, Any]], products_client: httpx.AsyncClient, judged: Judged
) -> None:
    page = await search(products_client, judged.q, sort="relevance")
    found = skus(page)
    assert page["corrected_q"] == judged.corrected_q, found
    assert page["total"] == len(found)
    assert found[: len(judged.top)] == judged.top, found
    assert set(found[len(judged.top) : len(judged.top) + len(judged.top_set)]) == judged.top_set
    expected = set(judged.top) | judged.top_set | judged.also
    assert expected <= set(found), found
    if judged.only:
        assert set(found) == expected, found
    assert "KOPI-LUWAK-LAMA" not in found


def test_twenty_judged_queries() -> None:
    assert len({j.q for j in JUDGED}) == 20
