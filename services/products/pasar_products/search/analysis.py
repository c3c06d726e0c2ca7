"""How text becomes search terms: one analysis for what is indexed and what is asked.

Lower-cased, accents folded (NFKD, combining marks dropped: "kafé" is "kafe"), split on
anything that is not a letter or digit, and each word stemmed with Sastrawi, which
strips Indonesian affixes ("berlari" -> "lari", "pembersih" -> "bersih", "minuman" ->
"minum"). A document keeps the word as written next to its stem when they differ: the
stem makes "berlari" find "sepatu lari", the raw word lets a half-typed "pembers" still
prefix-match "pembersih" (a stem of a half word is nonsense) and ranks the exact form
higher. Terms are ASCII-or-Unicode letters and digits only, so no index's query syntax
can ever see an operator in them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

# InnoDB does not index words longer than 84 characters; nothing real is that long.
MAX_TERM_LENGTH = 60

_WORD = re.compile(r"[^\W_]+")
# Building the stemmer loads its dictionary (~30,000 words); once per process, lazily.
_stemmer: Any = None


def _delegate() -> Any:
    global _stemmer
    if _stemmer is None:
        # The factory wraps the stemmer in an unbounded word cache; ours is bounded.
        _stemmer = StemmerFactory().create_stemmer().delegatedStemmer
    return _stemmer


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The Sastrawi stem of one lower-case word; words with digits are left alone."""
    if not word.isalpha() or len(word) < 4:
        return word
    stemmed: str = _delegate().stem(word)
    return stemmed if stemmed and _WORD.fullmatch(stemmed) else word


def fold(text: str) -> str:
    """Lower-cased with accents removed."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The words of ``text``, folded, in order (repeats kept)."""
    return [word[:MAX_TERM_LENGTH] for word in _WORD.findall(fold(text))]


def terms(text: str) -> list[str]:
    """The indexed terms of ``text``: every word and, where it differs, its stem."""
    found: dict[str, None] = {}
    for word in words(text):
        found[word] = None
        found[stem(word)] = None
    return list(found)


def sku_terms(sku: str) -> list[str]:
    """A SKU as one term ("KOPI-250" -> "kopi250") and as its parts ("kopi", "250")."""
    parts = words(sku)
    whole = "".join(parts)[:MAX_TERM_LENGTH]
    return list(dict.fromkeys([whole, *parts])) if whole else []


def document(*, sku: str, name: str, category: str, description: str) -> tuple[str, str]:
    """The two weighted fields of a product's index entry, as space-separated terms.

    The name and the SKU rank above the category and the description.
    """
    name_terms = list(dict.fromkeys([*terms(name), *sku_terms(sku)]))
    body_terms = [
        term
        for term in dict.fromkeys([*terms(category), *terms(description)])
        if term not in name_terms
    ]
    return " ".join(name_terms), " ".join(body_terms)
