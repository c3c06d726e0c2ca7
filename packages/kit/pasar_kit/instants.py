"""``Instant``: a moment in time as the API takes it from a client or another service.

An RFC 3339 date-time with its offset (``2026-01-10T12:00:00Z``,
``2026-01-10T19:00:00+07:00``), converted to UTC. A naive date-time is refused, not
guessed at, and so is anything that is not text: pydantic would otherwise read a JSON
number as seconds since 1970 and a date alone as midnight.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):  # given by Python code, not parsed
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-01-10T12:00:00Z")
    return value


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+01:00, which is before year 1 in UTC
        raise ValueError("the datetime is out of range once converted to UTC") from None


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]
