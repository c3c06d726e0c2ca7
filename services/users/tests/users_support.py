"""Test data the users suite shares (imported by name: no other suite has this module)."""

from __future__ import annotations

# The orders service's client secret in the test settings (conftest.users_test_settings).
ORDERS_SECRET = "orders-secret-for-tests-only"
# Every test account's password unless a test says otherwise.
PASSWORD = "correct horse battery"
