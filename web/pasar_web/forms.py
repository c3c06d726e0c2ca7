"""Reading a posted form: each field checked, each problem a sentence beside its input.

The services check everything again; these checks are here so the shopper hears about
a missing city next to the city field, in their language, without a round trip.
"""

from __future__ import annotations

import re

from starlette.datastructures import FormData

from pasar_web.i18n import gettext as _

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Fields:
    def __init__(self, form: FormData) -> None:
        self.form = form
        self.values: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def text(
        self, name: str, *, required: bool = True, max_length: int = 200, min_length: int = 0
    ) -> str:
        raw = self.form.get(name)
        value = raw.strip() if isinstance(raw, str) else ""
        self.values[name] = value
        if not value:
            if required:
                self.errors[name] = _("Please fill this in.")
        elif len(value) > max_length:
            self.errors[name] = _("At most %(count)s characters.", count=max_length)
        elif len(value) < min_length:
            self.errors[name] = _("At least %(count)s characters.", count=min_length)
        return value

    def email(self, name: str = "email") -> str:
        value = self.text(name, max_length=254).lower()
        self.values[name] = value
        if value and name not in self.errors and not _EMAIL.match(value):
            self.errors[name] = _("Enter an email address like nama@contoh.com.")
        return value

    def password(self, name: str, *, new: bool = False) -> str:
        """A password as typed (never stripped: spaces may be part of it)."""
        raw = self.form.get(name)
        value = raw if isinstance(raw, str) else ""
        if not value:
            self.errors[name] = _("Please fill this in.")
        elif new and len(value) < 8:
            self.errors[name] = _("Use at least 8 characters.")
        elif len(value) > 1024:
            self.errors[name] = _("At most %(count)s characters.", count=1024)
        return value

    def whole_number(
        self, name: str, *, minimum: int, maximum: int, required: bool = True
    ) -> int | None:
        raw = self.text(name, required=required, max_length=20)
        if not raw:
            return None
        cleaned = raw.replace(".", "").replace(",", "").replace(" ", "")
        if not re.fullmatch(r"[-+]?[0-9]+", cleaned):
            self.errors[name] = _("Enter a whole number.")
            return None
        number = int(cleaned)
        if not minimum <= number <= maximum:
            self.errors[name] = _(
                "Enter a number from %(low)s to %(high)s.", low=minimum, high=maximum
            )
            return None
        return number

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Field errors a service reported (422) that our own checks did not catch."""
        for name in errors:
            self.errors.setdefault(name, _("This value is not accepted. Please check it."))

    @property
    def ok(self) -> bool:
        return not self.errors
