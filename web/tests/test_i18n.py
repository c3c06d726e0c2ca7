"""Bahasa Indonesia first, English too: every message translated, the language chosen
by the shopper, prices and dates in the local way."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from web_support import Shop, text

from pasar_web import i18n

WEB = Path(i18n.__file__).parent
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _source_messages() -> set[str]:
    """Every message id in the code and the pages, as `make messages` extracts them."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "lazy": None, "ngettext": (1, 2)}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_has_an_indonesian_translation() -> None:
    with (WEB / "locale/id/LC_MESSAGES/messages.po").open("rb") as source:
        catalogue = read_po(source, locale="id")
    translated = {}
    for message in catalogue:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"not translated: {key!r}"
        for string in strings:
            assert isinstance(string, str) and isinstance(key, str)
            assert set(_PLACEHOLDER.findall(string)) == set(_PLACEHOLDER.findall(key)), key
        translated[key] = strings
    missing = _source_messages() - set(translated)
    assert not missing, f"run `make messages` and translate: {sorted(missing)[:10]}"
    assert catalogue.num_plurals == 1  # Indonesian does not inflect for number


def test_money_numbers_and_dates_follow_the_language() -> None:
    moment = datetime(2026, 11, 25, 14, 3, tzinfo=UTC)
    with i18n.speaking("id", ZoneInfo("Asia/Jakarta")):
        assert i18n.money(92_000) == "Rp\xa092.000"
        assert i18n.money(1_250_000) == "Rp\xa01.250.000"
        assert i18n.number(12_345) == "12.345"
        assert i18n.local_datetime(moment) == "25 Nov 2026 21.03"  # WIB, 24-hour
    with i18n.speaking("en", ZoneInfo("Asia/Jakarta")):
        assert i18n.money(92_000) == "Rp\xa092,000"
        assert i18n.local_datetime(moment) == "Nov 25, 2026 9:03\u202fPM"


def test_the_language_is_negotiated() -> None:
    assert i18n.choose_language(None, None, "id") == "id"
    assert i18n.choose_language(None, "en-US,en;q=0.9", "id") == "en"
    assert i18n.choose_language(None, "fr-FR, id;q=0.5", "id") == "id"
    assert i18n.choose_language(None, "de, fr", "id") == "id"
    assert i18n.choose_language("en", "id-ID", "id") == "en"  # the shopper's switch wins
    assert i18n.choose_language("xx", "en", "id") == "en"


async def test_the_shop_speaks_indonesian_unless_asked_otherwise(web_shop: Shop) -> None:
    await web_shop.product(name="Kopi Bahasa", price=92_000, stock=3)
    async with web_shop.browser(language=None) as browser:
        page = await browser.get("/")
        shown = text(page.text)
        assert "Keranjang" in shown and "Masuk" in shown and "Semua produk" in shown
        assert "Rp 92.000" in shown and "Sisa 3" in shown
        switched = await browser.post("/language", {"language": "en", "next": "/?q=Kopi"})
        assert str(switched.url).endswith("/?q=Kopi")
        assert "Cart" in text(switched.text) and "Rp 92,000" in text(switched.text)
        assert switched.headers["content-language"] == "en"
        # The choice is kept (a cookie), and a bad one changes nothing.
        still = await browser.get("/")
        odd = await browser.post("/language", {"language": "xx", "next": "https://evil.example/"})
    assert still.headers["content-language"] == "en"
    assert odd.headers["content-language"] == "en" and str(odd.url) == "http://shop.test/"


async def test_friendly_errors_in_indonesian(web_shop: Shop) -> None:
    async with web_shop.browser(language="id-ID,id;q=0.9") as browser:
        wrong = await browser.submit(
            "/login", "/login", {"email": "siapa@example.com", "password": "salah-salah"}
        )
        missing = await browser.get("/products/tidak-ada")
    assert "Email atau kata sandi salah." in text(wrong.text)
    assert missing.status_code == 404 and "Halaman tidak ditemukan" in text(missing.text)
