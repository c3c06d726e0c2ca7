"""The three services' public APIs, as the storefront calls them.

One ``ServiceClient`` (the kit's: timeouts, retries of idempotent calls, a circuit
breaker) per service. A service that is down raises the kit's ``DependencyUnavailable``;
an answer the service refused raises ``ApiProblem`` carrying its problem details, so a
page can turn ``out_of_stock`` or ``email_taken`` into a sentence for the shopper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from pasar_kit.http import CircuitBreaker, FilePart, Reply, ServiceClient
from pasar_web.models import (
    Category,
    Facets,
    Notification,
    NotificationPage,
    Order,
    OrderPage,
    OrderStats,
    Payment,
    Product,
    ProductImage,
    ProductPage,
    SavedCart,
    StockAdjustmentPage,
    Suggestion,
    TokenSet,
    User,
    UserPage,
)
from pasar_web.settings import Settings

Model = TypeVar("Model", bound=BaseModel)
Params = Sequence[tuple[str, str | int]]


class ApiProblem(Exception):
    """A service refused the request (4xx) and said why, as RFC 9457 problem details."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body: dict[str, Any] = body if isinstance(body, dict) else {}
        self.headers = dict(headers or {})
        self.code = str(self.body.get("code") or self.body.get("error") or status)
        super().__init__(f"{status} {self.code}: {self.body.get('detail', '')}")

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", ""))

    def field_errors(self) -> dict[str, str]:
        """422 ``errors`` by the name of the field they are about (the last part of loc)."""
        found: dict[str, str] = {}
        for error in self.body.get("errors", []) or []:
            loc = error.get("loc") or []
            names = [str(part) for part in loc if isinstance(part, str) and part != "body"]
            if names:
                found.setdefault(names[-1], str(error.get("msg", "")))
        return found


class Credentials(Protocol):
    """Whose bearer token a call carries (the signed-in shopper's, refreshed as needed)."""

    async def token(self) -> str: ...

    async def renewed(self) -> str: ...


def _parse(model: type[Model], reply: Reply) -> Model:
    return model.model_validate(reply.body)


class _Api:
    def __init__(self, client: ServiceClient, *, slow_client: ServiceClient | None = None) -> None:
        self.client = client
        # For calls that are slow by design (argon2id password hashing on the users
        # service): a longer timeout, so a busy machine answers instead of a false "down".
        self.slow_client = slow_client or client

    async def send(
        self,
        method: str,
        path: str,
        *,
        auth: Credentials | None = None,
        expect: tuple[int, ...] = (200,),
        json: Any = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, FilePart] | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        slow: bool = False,
    ) -> Reply:
        """Call the service; an answer outside ``expect`` raises ``ApiProblem``.

        A 401 with a token we believed valid (a rotated key, an expired token) is tried
        once more with a renewed one; a second 401 means the login is over.
        """
        client = self.slow_client if slow else self.client
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = f"Bearer {await auth.token()}"
        reply = await client.request(
            method,
            path,
            json=json,
            form=form,
            files=files,
            params=params,
            headers=sent,
            idempotent=idempotent,
        )
        if reply.status == 401 and auth is not None:
            sent["Authorization"] = f"Bearer {await auth.renewed()}"
            reply = await client.request(
                method,
                path,
                json=json,
                form=form,
                files=files,
                params=params,
                headers=sent,
                idempotent=idempotent,
            )
        if reply.status not in expect:
            raise ApiProblem(reply.status, reply.body, reply.headers)
        return reply

    async def close(self) -> None:
        await self.client.close()
        if self.slow_client is not self.client:
            await self.slow_client.close()


class UsersApi(_Api):
    async def register(
        self,
        *,
        email: str,
        password: str,
        full_name: str,
        language: str,
        client_address: str | None,
    ) -> User:
        # Registrations are limited per address: the shopper's, not the storefront's.
        headers = {"X-Forwarded-For": client_address} if client_address else {}
        body = {"email": email, "password": password, "full_name": full_name, "language": language}
        reply = await self.send(
            "POST", "/auth/register", json=body, headers=headers, expect=(201,), slow=True
        )
        return _parse(User, reply)

    async def password_grant(
        self, *, email: str, password: str, client_address: str | None
    ) -> TokenSet:
        # The login throttle must see the shopper's address, not the storefront's.
        headers = {"X-Forwarded-For": client_address} if client_address else {}
        form = {"grant_type": "password", "username": email, "password": password}
        reply = await self.send("POST", "/auth/token", form=form, headers=headers, slow=True)
        return _parse(TokenSet, reply)

    async def refresh(self, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return _parse(TokenSet, await self.send("POST", "/auth/token", form=form))

    async def logout(self, refresh_token: str) -> None:
        await self.send(
            "POST",
            "/auth/logout",
            json={"refresh_token": refresh_token},
            expect=(204,),
            idempotent=True,
        )

    async def me(self, auth: Credentials) -> User:
        return _parse(User, await self.send("GET", "/users/me", auth=auth))

    async def me_with_token(self, access_token: str) -> User:
        """The profile right after a login, before there is a session to refresh."""
        headers = {"Authorization": f"Bearer {access_token}"}
        return _parse(User, await self.send("GET", "/users/me", headers=headers))

    async def update_me(self, auth: Credentials, changes: Mapping[str, Any]) -> User:
        # Changing the email checks the current password (argon2id): slow by design.
        reply = await self.send("PATCH", "/users/me", auth=auth, json=dict(changes), slow=True)
        return _parse(User, reply)

    async def change_password(self, auth: Credentials, *, current: str, new: str) -> None:
        body = {"current_password": current, "new_password": new}
        await self.send("PUT", "/users/me/password", auth=auth, json=body, expect=(204,), slow=True)

    async def request_password_reset(self, *, email: str, client_address: str | None) -> None:
        # Reset requests are limited per address too: the shopper's.
        headers = {"X-Forwarded-For": client_address} if client_address else {}
        await self.send(
            "POST", "/auth/password-reset", json={"email": email}, headers=headers, expect=(202,)
        )

    async def confirm_password_reset(self, *, token: str, new_password: str) -> None:
        body = {"token": token, "new_password": new_password}
        await self.send("POST", "/auth/password-reset/confirm", json=body, expect=(204,), slow=True)

    async def verify_email(self, token: str) -> None:
        await self.send("POST", "/auth/verify-email", json={"token": token}, expect=(204,))

    async def resend_verification(self, auth: Credentials) -> None:
        await self.send("POST", "/users/me/email-verification", auth=auth, expect=(202,))

    async def notifications(
        self, auth: Credentials, *, unread: bool = False, limit: int = 20, offset: int = 0
    ) -> NotificationPage:
        params: Params = [("limit", limit), ("offset", offset)]
        if unread:
            params = [*params, ("unread", "true")]
        reply = await self.send("GET", "/users/me/notifications", auth=auth, params=params)
        return _parse(NotificationPage, reply)

    async def unread_count(self, auth: Credentials) -> int:
        return (await self.notifications(auth, unread=True, limit=1)).total

    async def mark_read(self, auth: Credentials, notification_id: str) -> None:
        await self.send(
            "POST",
            f"/users/me/notifications/{notification_id}/read",
            auth=auth,
            expect=(204,),
            idempotent=True,
        )

    async def list_users(
        self, auth: Credentials, *, q: str | None, limit: int, offset: int
    ) -> UserPage:
        params: Params = [("limit", limit), ("offset", offset)]
        if q:
            params = [*params, ("q", q)]
        return _parse(UserPage, await self.send("GET", "/users", auth=auth, params=params))

    async def update_user(
        self,
        auth: Credentials,
        user_id: str,
        *,
        role: str | None = None,
        active: bool | None = None,
    ) -> User:
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = role
        if active is not None:
            body["active"] = active
        return _parse(User, await self.send("PATCH", f"/users/{user_id}", auth=auth, json=body))


@dataclass(frozen=True)
class CatalogueQuery:
    """``GET /products`` as the catalogue page asks it."""

    q: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool = False
    sort: str = "name"
    limit: int = 24
    offset: int = 0
    include_archived: bool = False

    def params(self) -> Params:
        params: list[tuple[str, str | int]] = [
            ("sort", self.sort),
            ("limit", self.limit),
            ("offset", self.offset),
        ]
        for name in ("q", "category", "min_price", "max_price"):
            value = getattr(self, name)
            if value is not None and value != "":
                params.append((name, value))
        if self.in_stock:
            params.append(("in_stock", "true"))
        if self.include_archived:
            params.append(("include_archived", "true"))
        return params


class ProductsApi(_Api):
    async def search(self, query: CatalogueQuery, auth: Credentials | None = None) -> ProductPage:
        reply = await self.send("GET", "/products", params=query.params(), auth=auth)
        return _parse(ProductPage, reply)

    async def categories(self) -> list[Category]:
        reply = await self.send("GET", "/categories")
        return [Category.model_validate(entry) for entry in reply.body]

    async def facets(self, query: CatalogueQuery) -> Facets:
        """Counts per category and price band for the catalogue page's filters."""
        params = [(k, v) for k, v in query.params() if k not in ("sort", "limit", "offset")]
        return _parse(Facets, await self.send("GET", "/products/facets", params=params))

    async def suggest(self, q: str, *, limit: int = 6) -> list[Suggestion]:
        reply = await self.send("GET", "/products/suggest", params=[("q", q), ("limit", limit)])
        return [Suggestion.model_validate(entry) for entry in reply.body]

    async def get(self, product_id: str) -> tuple[Product, str] | None:
        """The product and its ETag; None when there is no such product."""
        reply = await self.send("GET", f"/products/{product_id}", expect=(200, 404))
        if reply.status == 404:
            return None
        return _parse(Product, reply), _etag(reply)

    async def create(self, auth: Credentials, fields: Mapping[str, Any]) -> Product:
        reply = await self.send("POST", "/products", auth=auth, json=dict(fields), expect=(201,))
        return _parse(Product, reply)

    async def update(
        self, auth: Credentials, product_id: str, changes: Mapping[str, Any], *, etag: str | None
    ) -> tuple[Product, str]:
        headers = {"If-Match": etag} if etag else {}
        reply = await self.send(
            "PATCH", f"/products/{product_id}", auth=auth, json=dict(changes), headers=headers
        )
        return _parse(Product, reply), _etag(reply)

    async def archive(self, auth: Credentials, product_id: str) -> None:
        await self.send("DELETE", f"/products/{product_id}", auth=auth, expect=(204,))

    async def adjust_stock(
        self, auth: Credentials, product_id: str, *, delta: int, reason: str
    ) -> Product:
        body = {"delta": delta, "reason": reason}
        reply = await self.send(
            "POST", f"/products/{product_id}/stock-adjustments", auth=auth, json=body
        )
        return _parse(Product, reply)

    async def adjustments(
        self, auth: Credentials, product_id: str, *, limit: int = 20, offset: int = 0
    ) -> StockAdjustmentPage:
        reply = await self.send(
            "GET",
            f"/products/{product_id}/stock-adjustments",
            auth=auth,
            params=[("limit", limit), ("offset", offset)],
        )
        return _parse(StockAdjustmentPage, reply)

    async def upload_image(
        self, auth: Credentials, product_id: str, picture: FilePart, *, main: bool
    ) -> ProductImage:
        """Add a picture (the service decides what it is from its content)."""
        reply = await self.send(
            "POST",
            f"/products/{product_id}/images",
            auth=auth,
            form={"main": "true" if main else "false"},
            files={"file": picture},
            expect=(201,),
            slow=True,  # up to megabytes to send and decode
        )
        return _parse(ProductImage, reply)

    async def make_main_image(self, auth: Credentials, product_id: str, image_id: str) -> None:
        await self.send(
            "PATCH", f"/products/{product_id}/images/{image_id}", auth=auth, json={"main": True}
        )

    async def delete_image(self, auth: Credentials, product_id: str, image_id: str) -> None:
        await self.send(
            "DELETE", f"/products/{product_id}/images/{image_id}", auth=auth, expect=(204,)
        )

    async def low_stock(self, auth: Credentials, *, threshold: int, limit: int = 10) -> ProductPage:
        reply = await self.send(
            "GET",
            "/admin/low-stock",
            auth=auth,
            params=[("threshold", threshold), ("limit", limit)],
        )
        return _parse(ProductPage, reply)


def _etag(reply: Reply) -> str:
    for name, value in reply.headers.items():
        if name.lower() == "etag":
            return value
    return ""


def _window(created_from: datetime | None, created_to: datetime | None) -> Params:
    params: list[tuple[str, str | int]] = []
    if created_from is not None:
        params.append(("created_from", created_from.isoformat()))
    if created_to is not None:
        params.append(("created_to", created_to.isoformat()))
    return params


class OrdersApi(_Api):
    async def place(self, auth: Credentials, body: Mapping[str, Any], *, key: str) -> Order:
        # The same key makes a repeat harmless, so a lost answer may be asked again.
        reply = await self.send(
            "POST",
            "/orders",
            auth=auth,
            json=dict(body),
            headers={"Idempotency-Key": key},
            expect=(200, 201),
            idempotent=True,
        )
        return _parse(Order, reply)

    async def list(
        self,
        auth: Credentials,
        *,
        status: str | None = None,
        user_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> OrderPage:
        params: list[tuple[str, str | int]] = [("limit", limit), ("offset", offset)]
        if status:
            params.append(("status", status))
        if user_id:
            params.append(("user_id", user_id))
        params.extend(_window(created_from, created_to))
        return _parse(OrderPage, await self.send("GET", "/orders", auth=auth, params=params))

    async def get(self, auth: Credentials, order_id: str) -> Order | None:
        reply = await self.send("GET", f"/orders/{order_id}", auth=auth, expect=(200, 404))
        return None if reply.status == 404 else _parse(Order, reply)

    async def cancel(self, auth: Credentials, order_id: str) -> Order:
        return _parse(Order, await self.send("POST", f"/orders/{order_id}/cancel", auth=auth))

    async def set_status(
        self, auth: Credentials, order_id: str, *, status: str, note: str | None
    ) -> Order:
        body = {"status": status, "note": note or None}
        reply = await self.send("POST", f"/orders/{order_id}/status", auth=auth, json=body)
        return _parse(Order, reply)

    async def pay(
        self, auth: Credentials, order_id: str, *, card_number: str, expiry: str, cvc: str
    ) -> Order:
        body = {"card_number": card_number, "expiry": expiry, "cvc": cvc}
        reply = await self.send("POST", f"/orders/{order_id}/payments", auth=auth, json=body)
        return _parse(Order, reply)

    async def payment(self, auth: Credentials, order_id: str) -> tuple[Payment | None, str | None]:
        """The order's gateway payment, if one was made, and the shop's gateway (None when
        the shop takes cards, or nothing, online)."""
        reply = await self.send("GET", f"/orders/{order_id}/payment", auth=auth, expect=(200, 404))
        if reply.status == 200:
            payment = _parse(Payment, reply)
            return payment, payment.provider
        body = reply.body if isinstance(reply.body, dict) else {}
        if body.get("code") != "payment_not_found":
            return None, None
        provider = body.get("provider")
        return None, str(provider) if provider else None

    async def start_payment(self, auth: Credentials, order_id: str) -> Payment | None:
        """Make (once) the order's payment at the gateway; None if the order is paid."""
        reply = await self.send("POST", f"/orders/{order_id}/payments", auth=auth, json={})
        payment = reply.body.get("payment") if isinstance(reply.body, dict) else None
        return Payment.model_validate(payment) if payment else None

    async def stats(
        self,
        auth: Credentials,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> OrderStats:
        reply = await self.send(
            "GET", "/admin/order-stats", auth=auth, params=_window(created_from, created_to)
        )
        return _parse(OrderStats, reply)

    async def saved_cart(self, auth: Credentials) -> SavedCart:
        return _parse(SavedCart, await self.send("GET", "/cart", auth=auth))

    async def save_cart(self, auth: Credentials, cart: Mapping[str, int]) -> None:
        items = [{"product_id": pid, "quantity": quantity} for pid, quantity in cart.items()]
        await self.send("PUT", "/cart", auth=auth, json={"items": items})


@dataclass
class Services:
    users: UsersApi
    products: ProductsApi
    orders: OrdersApi

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        def client(name: str, url: str, timeout: float = settings.http_timeout) -> ServiceClient:
            return ServiceClient(
                name,
                url,
                connect_timeout=settings.http_connect_timeout,
                timeout=timeout,
                retries=settings.http_retries,
                breaker=CircuitBreaker(
                    settings.circuit_failure_threshold, settings.circuit_reset_seconds
                ),
                throttling_is_failure=False,
            )

        return cls(
            users=UsersApi(
                client("users", settings.users_url),
                slow_client=client("users", settings.users_url, settings.password_timeout),
            ),
            products=ProductsApi(
                client("products", settings.products_url),
                slow_client=client("products", settings.products_url, settings.upload_timeout),
            ),
            orders=OrdersApi(client("orders", settings.orders_url, settings.orders_timeout)),
        )

    async def close(self) -> None:
        for api in (self.users, self.products, self.orders):
            await api.close()


__all__ = ["ApiProblem", "CatalogueQuery", "Credentials", "Notification", "Services"]
