"""Test data every suite shares, so one account, one address and one secret read the same
everywhere (on the import path of every suite: pyproject's ``pythonpath``)."""

from __future__ import annotations

from typing import Final

# Every test account's password unless a test says otherwise.
PASSWORD: Final = "correct horse battery"
# The Order-Service's client secret wherever a suite runs its own User-Service.
ORDERS_SECRET: Final = "orders-secret-for-tests-only"
# A shipping address the Order-Service accepts.
ADDRESS: Final[dict[str, str]] = {
    "recipient": "Siti Aminah",
    "line1": "Jl. Merdeka No. 1",
    "city": "Bandung",
    "postal_code": "40111",
    "country": "ID",
    "phone": "+62 812 0000 0000",
}
