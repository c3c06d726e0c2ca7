"""Schemathesis against each service's live OpenAPI, as every kind of caller.

Each service has two documents: the public one (``/openapi.json``) and the one for other
services (``/internal/openapi.json``, readable with a service token). The public one is
fuzzed as every kind of caller, the internal one (a copy fetched with the service token)
as a service.

Checks: no server errors, and every response conforms to the document (status codes,
content types, headers, bodies, Allow on 405) — so each route's OpenAPI declares what it
really returns. Left out, on purpose:

* ``positive_data_acceptance``: the schema cannot express business rules (an unknown
  product id, a stale ETag, a zero stock delta), so "schema-valid" inputs are rightly refused;
* ``use_after_free`` / ``ensure_resource_availability``: DELETE /products/{id} archives, and
  the contract keeps archived products readable by id.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from shoplib import ADMIN_EMAIL, ADMIN_PASSWORD, RunningShop, login, register

CHECKS_LEFT_OUT = "positive_data_acceptance,use_after_free,ensure_resource_availability"
EXAMPLES = os.environ.get("PASAR_FUZZ_EXAMPLES", "25")
SCOPES = "users:read notifications:write stock:reserve"


def service_token(shop: RunningShop) -> str:
    secret = json.loads((shop.data_dir / "secrets.json").read_text())["orders_client_secret"]
    response = httpx.post(
        f"{shop.url('users')}/auth/token",
        data={"grant_type": "client_credentials", "client_id": "orders",
              "client_secret": secret, "scope": SCOPES},
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def tokens(shop: RunningShop) -> dict[str, str | None]:
    return {
        "anonymous": None,
        "customer": register(shop.url("users"), f"fuzz-{uuid.uuid4().hex[:8]}@example.com"),
        "admin": login(shop.url("users"), ADMIN_EMAIL, ADMIN_PASSWORD),
        "service": service_token(shop),
    }


def _internal_document(shop: RunningShop, service: str, token: str | None, tmp_path: Path) -> str:
    response = httpx.get(
        f"{shop.url(service)}/internal/openapi.json",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    path = tmp_path / f"{service}-internal.json"
    path.write_text(response.text)
    return str(path)


ROLES = ("anonymous", "customer", "admin", "service")
# The public documents as every caller. The internal ones with a service token only:
# anyone else is refused every internal route before its input is read (401/403, pinned
# by each service's authorization tests), so fuzzing them as other callers finds nothing
# and costs minutes of CI. Orders serves no internal route.
CASES = [
    *((service, role, "public") for service in ("users", "products", "orders") for role in ROLES),
    ("users", "service", "internal"),
    ("products", "service", "internal"),
]


@pytest.mark.parametrize(("service", "role", "document"), CASES)
def test_live_openapi_holds(
    service: str,
    role: str,
    document: str,
    shop: RunningShop,
    tokens: dict[str, str | None],
    tmp_path: Path,
) -> None:
    if document == "public":
        location = [f"{shop.url(service)}/openapi.json"]
    else:
        copy = _internal_document(shop, service, tokens["service"], tmp_path)
        assert json.loads(Path(copy).read_text())["paths"], f"{service} has no internal routes"
        location = [copy, "--url", shop.url(service)]
    command = [
        str(Path(sys.executable).parent / "st"), "run", *location,
        "--checks", "all", "--exclude-checks", CHECKS_LEFT_OUT,
        "--max-examples", EXAMPLES, "--seed", "20261125", "--no-color",
        # One worker: hypothesis parses lambdas with ast, which is not thread-safe on 3.11.
        "--workers", "1", "--request-timeout", "20",
        "--suppress-health-check", "all", "--generation-database", "none",
        # A customer is refused admin routes by design; that is not a finding.
        "--warnings", "off",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    token = tokens[role]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    print(f"fuzz {service} {document} as {role}: {generated.group(1) if generated else '?'} cases")
    assert result.returncode == 0, output[-6000:]
