"""Languages, translations and local formats (prices, numbers, dates).

The shop speaks Bahasa Indonesia first and English too. Message ids are English and
live in the code and templates (``_("Cart")``); Indonesian is the gettext catalogue
``locale/id/LC_MESSAGES/messages.po``, compiled in memory at start-up so no binary
``.mo`` file is kept in git. The language of a request comes from the ``lang`` cookie
(the footer switch), else ``Accept-Language``, else the shop's default.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, get_currency_symbol, get_group_symbol
from babel.support import NullTranslations, Translations

LANGUAGES: dict[str, str] = {"id": "Bahasa Indonesia", "en": "English"}
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_COOKIE = "lang"

_NULL = NullTranslations()
_catalogues: dict[str, NullTranslations] = {}
_language: ContextVar[str] = ContextVar("pasar_web_language", default="en")
_UTC = ZoneInfo("UTC")
_zone: ContextVar[ZoneInfo | None] = ContextVar("pasar_web_zone", default=None)


def load_catalogues() -> None:
    """Compile every ``.po`` catalogue into memory (once, at start-up)."""
    for language in LANGUAGES:
        po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            _catalogues[language] = _NULL
            continue
        with po.open("rb") as source:
            catalogue = read_po(source, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        _catalogues[language] = Translations(compiled)


def choose_language(cookie: str | None, accept_language: str | None, default: str) -> str:
    if cookie in LANGUAGES:
        return cookie
    if accept_language:
        wanted = []
        for part in accept_language.split(",")[:10]:
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            if tag and quality > 0:
                wanted.append((quality, tag.strip().replace("-", "_")))
        wanted.sort(key=lambda item: -item[0])  # stable: equal weights keep their order
        found = negotiate_locale([tag for _, tag in wanted], list(LANGUAGES), sep="_")
        if found:
            return found
    return default


@contextmanager
def speaking(language: str, zone: ZoneInfo | None = None) -> Iterator[None]:
    """Translate and format in ``language`` (and show times in ``zone``) inside the block."""
    token = _language.set(language)
    zone_token = _zone.set(zone) if zone is not None else None
    try:
        yield
    finally:
        _language.reset(token)
        if zone_token is not None:
            _zone.reset(zone_token)


def current_language() -> str:
    return _language.get()


def _translations() -> NullTranslations:
    return _catalogues.get(_language.get(), _NULL)


def gettext(message: str, **values: Any) -> str:
    """``message`` in the current language; ``%(name)s`` placeholders filled from values."""
    text = _translations().gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    text = _translations().ngettext(singular, plural, n)
    return text % {"num": n, **values}


_ = gettext


def template_gettext(message: str) -> str:
    """For Jinja's i18n extension, which fills the placeholders itself (escaping them)."""
    return _translations().gettext(message)


def template_ngettext(singular: str, plural: str, n: int) -> str:
    return _translations().ngettext(singular, plural, n)


def lazy(message: str) -> str:
    """Mark a message for extraction where it is defined; translate it where it is shown."""
    return message


@functools.cache
def _locale_of(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def _locale() -> Locale:
    return _locale_of(_language.get())


# The symbol as the currency's home market writes it (Rp, not IDR, in English too).
_HOME_LOCALE = {"IDR": "id", "MYR": "ms", "SGD": "en_SG", "USD": "en_US"}


@functools.cache
def _symbol(currency: str) -> str:
    return get_currency_symbol(currency, locale=_HOME_LOCALE.get(currency, "en"))


@functools.cache
def _group_separator(language: str) -> str:
    return get_group_symbol(locale=_locale_of(language))


def number(value: int) -> str:
    """``12.345`` in Indonesian, ``12,345`` in English (whole numbers; every price is one).

    Babel's formatter is exact but costs about 0.1 ms a call, and a page of products
    has dozens of prices: whole numbers are grouped here with the locale's separator.
    """
    if isinstance(value, int):
        return f"{value:,}".replace(",", _group_separator(_language.get()))
    return str(format_decimal(value, locale=_locale()))


def money(amount: int | Decimal, currency: str = "IDR") -> str:
    """``Rp 92.000`` in Indonesian, ``Rp 92,000`` in English: whole units, no decimals.

    A no-break space keeps the symbol with its number on a narrow phone screen.
    """
    shown = (
        number(amount)
        if isinstance(amount, int)
        else format_decimal(amount, format="#,##0", locale=_locale())
    )
    return f"{_symbol(currency)}\u00a0{shown}"


def local_datetime(value: datetime | str) -> str:
    """A timestamp in the shop's time zone: ``26 Nov 2026 06.45`` in Indonesian."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.astimezone(_zone.get() or _UTC)
    locale = _locale()
    day = format_date(moment, "medium", locale=locale)
    return f"{day} {format_time(moment, 'short', locale=locale)}"


def local_date(value: datetime | date | str, style: str = "medium") -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if isinstance(moment, datetime):
        moment = moment.astimezone(_zone.get() or _UTC).date()
    return format_date(moment, style, locale=_locale())
