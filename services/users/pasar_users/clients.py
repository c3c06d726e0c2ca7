"""Service clients and the client-credentials grant's checks."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from pasar_users.passwords import Passwords
from pasar_users.problems import InvalidClient, InvalidScope
from pasar_users.settings import ServiceClientConfig


@dataclass(frozen=True)
class ServiceClient:
    client_id: str
    scopes: frozenset[str]
    secret: str | None = None
    secret_hash: str | None = None


class ServiceClients:
    def __init__(self, configs: Iterable[ServiceClientConfig], passwords: Passwords) -> None:
        self._passwords = passwords
        self._clients = {
            c.client_id: ServiceClient(
                client_id=c.client_id,
                scopes=frozenset(c.scopes),
                secret=c.secret.get_secret_value() if c.secret else None,
                secret_hash=c.secret_hash,
            )
            for c in configs
        }

    async def authenticate(self, client_id: str, secret: str) -> ServiceClient:
        """The client, or ``InvalidClient`` for an unknown id or a wrong secret."""
        client = self._clients.get(client_id)
        if client is None:
            ok = False
        elif client.secret_hash is not None:
            ok = await self._passwords.verify(client.secret_hash, secret)
        else:
            assert client.secret is not None
            # Constant time: the comparison must not reveal how much of the secret matched.
            ok = hmac.compare_digest(client.secret.encode(), secret.encode())
        if client is None or not ok:
            raise InvalidClient("Unknown client or wrong secret.")
        return client


def granted_scope(client: ServiceClient, requested: str | None) -> str:
    """The requested scopes if the client holds them all; every allowed one when none asked."""
    if requested is None or not requested.strip():
        return " ".join(sorted(client.scopes))
    wanted = set(requested.split())
    refused = wanted - client.scopes
    if refused:
        raise InvalidScope(f"Not allowed for this client: {' '.join(sorted(refused))}.")
    return " ".join(sorted(wanted))
