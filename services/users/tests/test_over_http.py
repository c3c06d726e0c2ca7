"""The User-Service as other services meet it: over real HTTP, through the kit's
client-credentials client, resilient client and cached JWKS."""

from __future__ import annotations

import httpx
import jwt
from fastapi import FastAPI
from testdata import ORDERS_SECRET
from users_support import UsersApi

from pasar_kit.auth import RemoteJWKS, TokenVerifier
from pasar_kit.db import utcnow
from pasar_kit.http import ClientCredentials, ServiceClient
from pasar_kit.testing import serve
from pasar_users.keys import rotate_signing_key


async def test_kit_clients_against_the_served_app(users_app: FastAPI, users_api: UsersApi) -> None:
    account = await users_api.account()
    async with serve(users_app) as base_url:
        credentials = ClientCredentials(
            f"{base_url}/auth/token",
            "orders",
            ORDERS_SECRET,
            scope="users:read notifications:write",
        )
        client = ServiceClient("users", base_url, credentials=credentials)
        try:
            reply = await client.request("GET", f"/internal/users/{account.id}")
            assert reply.status == 200 and reply.body["id"] == account.id
            posted = await client.request(
                "POST",
                "/internal/notifications",
                json={
                    "event_id": "http-1",
                    "user_id": account.id,
                    "type": "order.created",
                    "message": "hi",
                    "occurred_at": "2026-11-25T14:03:00Z",
                },
                idempotent=True,
            )
            assert posted.status == 202
        finally:
            await client.close()

        verifier = TokenVerifier(
            RemoteJWKS(f"{base_url}/.well-known/jwks.json", min_refetch_seconds=0),
            issuer="pasar-users",
            audience="pasar",
        )
        principal = await verifier.verify(account.access_token)
        assert principal.subject == account.id and principal.role == "customer"

        # After a rotation the verifier learns the new key from the JWKS by itself.
        new_kid = await rotate_signing_key(db=users_app.state.db, now=utcnow())
        async with httpx.AsyncClient(base_url=base_url) as http:
            await http.get("/.well-known/jwks.json")  # this replica reloads its ring
            login = await http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": account.email,
                    "password": account.password,
                },
            )
        fresh = login.json()["access_token"]
        assert jwt.get_unverified_header(fresh)["kid"] == new_kid
        assert (await verifier.verify(fresh)).subject == account.id
        assert (await verifier.verify(account.access_token)).subject == account.id
