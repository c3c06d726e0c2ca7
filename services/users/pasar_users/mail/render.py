"""Turning a delivery into an email: subject, plain text and simple HTML, in the
recipient's language.

Message ids are English and live in the templates (``{{ _("...") }}``) and in this module
(``lazy("...")``); Indonesian is the gettext catalogue
``pasar_users/locale/id/LC_MESSAGES/messages.po``, compiled in memory once per process
(no ``.mo`` in git), as the storefront does it. ``make messages`` collects new ids.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
LOCALE_DIR = Path(__file__).parent.parent / "locale"
TEMPLATE_DIR = Path(__file__).parent / "templates"


def lazy(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated when shown."""
    return message


# What the customer reads about their order, per status; a new order says so first.
_PLACED = {
    "pending_payment": lazy("We have received your order #%(number)s. It is waiting for payment."),
    "processing": lazy("We have received your order #%(number)s and are preparing it."),
}
_PHRASES = {
    "pending_payment": lazy("Your order #%(number)s is waiting for payment."),
    "processing": lazy("We have received the payment for order #%(number)s and are preparing it."),
    "shipped": lazy("Your order #%(number)s is on its way."),
    "completed": lazy("Your order #%(number)s is completed. Thank you for shopping with us!"),
    "cancelled": lazy("Your order #%(number)s has been cancelled."),
}
_OTHER_PHRASE = lazy("Your order #%(number)s is now %(status)s.")
_SUBJECTS = {
    "pending_payment": lazy("Order #%(number)s is waiting for payment"),
    "processing": lazy("Order #%(number)s is being prepared"),
    "shipped": lazy("Order #%(number)s has been shipped"),
    "completed": lazy("Order #%(number)s is completed"),
    "cancelled": lazy("Order #%(number)s has been cancelled"),
}
_PLACED_SUBJECT = lazy("Order #%(number)s received")
_OTHER_SUBJECT = lazy("Order #%(number)s: %(status)s")
_ADMIN_SUBJECT_WITHOUT_TOTAL = lazy("New order #%(number)s")
_TEMPLATE_SUBJECTS = {
    "verify_email": lazy("Confirm your email address for %(shop)s"),
    "password_reset": lazy("Reset your %(shop)s password"),
    "password_changed": lazy("Your %(shop)s password was changed"),
    "email_changed": lazy("The email address of your %(shop)s account was changed"),
    "admin_new_order": lazy("New order #%(number)s: %(total)s"),
}


@functools.cache
def catalogue(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English is the message ids themselves)."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po.exists():
        return NullTranslations()
    with po.open("rb") as source:
        parsed = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, parsed)
    compiled.seek(0)
    return Translations(compiled)


def money(amount: int, language: str) -> str:
    """``Rp 92.000`` in Indonesian, ``Rp 92,000`` in English (as the storefront prints
    it): whole rupiah, a no-break space after the symbol."""
    grouped = f"{amount:,}"
    if language == "id":
        grouped = grouped.replace(",", ".")
    return f"Rp\u00a0{grouped}"


def short_id(order_id: str) -> str:
    """The order number customers see (the Order-Service's ``#1A2B3C4D``)."""
    return order_id.replace("-", "")[:8].upper()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    # Every link in the message, for the file transport's log line.
    links: tuple[str, ...]


class Renderer:
    """Renders every template in both languages; built once per process."""

    def __init__(self, *, storefront_url: str, shop_name: str, mail_from: str) -> None:
        self.storefront_url = storefront_url.rstrip("/")
        self.shop_name = shop_name
        self.mail_from = mail_from
        _, address = parseaddr(mail_from)
        self.domain = address.rpartition("@")[2] or "localhost"
        self._environments = {language: self._environment(language) for language in LANGUAGES}

    @staticmethod
    def _environment(language: str) -> Environment:
        environment = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.install_gettext_translations(catalogue(language), newstyle=True)  # type: ignore[attr-defined]
        environment.filters["money"] = lambda amount: money(int(amount), language)
        return environment

    def link(self, path: str) -> str:
        return f"{self.storefront_url}{path}"

    def render(
        self, template: str, *, language: str, context: Mapping[str, Any], name: str | None
    ) -> Rendered:
        """``template`` in ``language`` (Indonesian when unknown) with ``context``: what the
        delivery carries plus what the sender added (links, the recipient's name)."""
        if language not in self._environments:
            language = DEFAULT_LANGUAGE
        translate = catalogue(language).gettext
        values: dict[str, Any] = {
            "shop": self.shop_name,
            "name": name,
            "language": language,
            **context,
        }
        links: list[str] = []
        if "link" in values:
            links.append(values["link"])
        if template in ("order_status", "admin_new_order"):
            values.update(self._order_values(template, values, language))
            links.append(values["link"])
        if template in ("password_changed", "email_changed"):
            values["link"] = self.link("/forgot-password")
            links.append(values["link"])
        if template == "order_status":
            subject_id = self._order_subject(values)
        elif template == "admin_new_order" and values["total"] is None:
            subject_id = _ADMIN_SUBJECT_WITHOUT_TOTAL
        else:
            subject_id = _TEMPLATE_SUBJECTS[template]
        subject = translate(subject_id) % values
        environment = self._environments[language]
        text = environment.get_template(f"{template}.txt").render(values)
        html = environment.get_template(f"{template}.html").render(values, subject=subject)
        return Rendered(subject=subject, text=text, html=html, links=tuple(links))

    def _order_values(
        self, template: str, values: Mapping[str, Any], language: str
    ) -> dict[str, Any]:
        order_id = str(values["order_id"])
        status = str(values.get("status") or "")
        number = short_id(order_id)
        order = values.get("order") or {}
        total = order.get("total")
        translate = catalogue(language).gettext
        created = values.get("type") == "order.created"
        phrase_id = (_PLACED if created else _PHRASES).get(status) or _PHRASES.get(
            status, _OTHER_PHRASE
        )
        path = (
            f"/admin/orders/{order_id}" if template == "admin_new_order" else f"/orders/{order_id}"
        )
        return {
            "number": number,
            "status": status,
            "phrase": translate(phrase_id) % {"number": number, "status": status},
            "lines": order.get("lines") or [],
            "total": money(int(total), language) if total is not None else None,
            "note": order.get("note"),
            "link": self.link(path),
        }

    @staticmethod
    def _order_subject(values: Mapping[str, Any]) -> str:
        status = values["status"]
        if values.get("type") == "order.created":
            return _PLACED_SUBJECT
        return _SUBJECTS.get(status, _OTHER_SUBJECT)

    def message_id(self, delivery_id: str) -> str:
        """One Message-ID per delivery: a retry is the same message, so a receiver can
        drop a copy of one that was accepted just before a crash."""
        return f"<{delivery_id}@{self.domain}>"

    def message(
        self,
        rendered: Rendered,
        *,
        recipient: str,
        message_id: str,
        language: str,
        now: datetime,
    ) -> EmailMessage:
        """A multipart/alternative message: plain text first, HTML preferred."""
        message = EmailMessage()
        message["Subject"] = rendered.subject
        message["From"] = self.mail_from
        message["To"] = recipient
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"
        # 8bit, not quoted-printable: the text part of an .eml file stays readable and
        # its links clickable (every line is far below SMTP's 998 octets).
        message.set_content(rendered.text, cte="8bit")
        message.add_alternative(rendered.html, subtype="html")
        # After the parts: setting the content drops every Content-* header.
        message["Content-Language"] = language
        return message
