"""What query analysis needs from the database, kept in memory per process: the
vocabulary (indexed terms and how many active products hold each) for correcting typos,
and the synonym rules. Both are reloaded after ``ttl_seconds``; a synonym edit through
this process drops them at once. Correcting a word then costs a few milliseconds of
edit distance (rapidfuzz) instead of a scan.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pasar_kit.db import Database
from pasar_products.problems import SynonymNotFound
from pasar_products.search.analysis import stem
from pasar_products.tables import search_synonyms, search_terms

_VOCABULARY = select(search_terms.c.term, search_terms.c.products).where(
    search_terms.c.products > 0
)
_SYNONYMS = select(search_synonyms.c.term, search_synonyms.c.expands_to).order_by(
    search_synonyms.c.term
)


# A word this short is too near too many others ("n" is one edit from "1" and "a").
MIN_CORRECTED_LENGTH = 3


def max_distance(word: str) -> int:
    """The edits a typo of ``word`` may hold: one in a short word, two in a longer one."""
    return 1 if len(word) <= 5 else 2


@dataclass
class Snapshot:
    counts: dict[str, int]
    synonyms: dict[str, tuple[str, ...]]
    sorted_terms: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.sorted_terms = sorted(self.counts)

    def known(self, word: str, *, prefix: bool) -> bool:
        """Whether ``word`` (or its stem, or a synonym rule for it) can match anything;
        a word with a digit is taken as typed (the vocabulary has letters only)."""
        if not word.isalpha() or word in self.counts or stem(word) in self.counts:
            return True
        if word in self.synonyms or stem(word) in self.synonyms:
            return True
        if prefix:
            at = bisect.bisect_left(self.sorted_terms, word)
            return at < len(self.sorted_terms) and self.sorted_terms[at].startswith(word)
        return False

    def nearest(self, word: str) -> str | None:
        """The vocabulary term nearest ``word`` within ``max_distance``; the most common
        one among equally near terms."""
        if len(word) < MIN_CORRECTED_LENGTH:
            return None
        found = process.extract(
            word,
            self.sorted_terms,
            scorer=Levenshtein.distance,
            score_cutoff=max_distance(word),
            limit=None,
        )
        if not found:
            return None
        best = min(found, key=lambda hit: (hit[1], -self.counts[hit[0]], hit[0]))
        return str(best[0])

    def correct(self, words: Sequence[str]) -> list[str] | None:
        """``words`` with each unknown one replaced by its nearest term; None when none
        was unknown or one has no near term."""
        corrected = []
        changed = False
        for position, word in enumerate(words):
            if self.known(word, prefix=position == len(words) - 1):
                corrected.append(word)
                continue
            near = self.nearest(word)
            if near is None:
                return None
            corrected.append(near)
            changed = True
        return corrected if changed else None


class Lexicon:
    """The vocabulary and synonyms of one process, reloaded after ``ttl_seconds``."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._snapshot: Snapshot | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def clear(self) -> None:
        self._snapshot = None

    async def snapshot(self, db: Database) -> Snapshot:
        if self._snapshot is not None and time.monotonic() < self._expires:
            return self._snapshot
        async with self._lock:  # one reload at a time, the others wait for it
            if self._snapshot is None or time.monotonic() >= self._expires:
                async with db.read() as conn:
                    counts = {str(t): int(n) for t, n in (await conn.execute(_VOCABULARY)).all()}
                    synonyms = {
                        str(t): tuple(str(e).split())
                        for t, e in (await conn.execute(_SYNONYMS)).all()
                    }
                self._snapshot = Snapshot(counts, synonyms)
                self._expires = time.monotonic() + self.ttl_seconds
        return self._snapshot

    async def synonyms(self, db: Database) -> Mapping[str, tuple[str, ...]]:
        return (await self.snapshot(db)).synonyms


@dataclass(frozen=True)
class SynonymRule:
    term: str
    expands_to: list[str]


async def list_synonyms(*, db: Database) -> list[SynonymRule]:
    async with db.read() as conn:
        rows = (await conn.execute(_SYNONYMS)).all()
    return [SynonymRule(str(term), str(expands).split()) for term, expands in rows]


async def put_synonym(*, db: Database, term: str, expands_to: Sequence[str]) -> SynonymRule:
    """Create or replace the rule for ``term`` (both sides analysed already)."""
    stored = " ".join(dict.fromkeys(word for word in expands_to if word != term))
    exists = select(search_synonyms.c.term).where(search_synonyms.c.term == term)
    replace = (
        update(search_synonyms).where(search_synonyms.c.term == term).values(expands_to=stored)
    )
    # Two admins creating the same rule at once: the loser's insert fails, and its
    # second look finds the row to replace.
    for attempt in (1, 2):
        try:
            async with db.write() as conn:
                if (await conn.execute(exists)).first() is not None:
                    await conn.execute(replace)
                else:
                    await conn.execute(insert(search_synonyms).values(term=term, expands_to=stored))
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return SynonymRule(term, stored.split())


async def delete_synonym(*, db: Database, term: str) -> None:
    async with db.write() as conn:
        result = await conn.execute(delete(search_synonyms).where(search_synonyms.c.term == term))
    if result.rowcount != 1:
        raise SynonymNotFound(f"No synonym rule for {term!r}.")
