"""Request and response bodies, split by use so a table row never leaks out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from pasar_kit.instants import Instant
from pasar_kit.pagination import Page
from pasar_users.accounts import TOKEN_MAX_LENGTH, Language, normalize_email
from pasar_users.tables import EMAIL_LENGTH, NAME_LENGTH

PASSWORD_MAX_LENGTH = 1024


def _strip_lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _normalized_email(value: str) -> str:
    # The one stored form (accounts.normalize_email), applied here at the edge.
    email = normalize_email(value)
    if len(email) > EMAIL_LENGTH:
        raise ValueError(f"the address is longer than {EMAIL_LENGTH} characters once normalised")
    return email


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Email = Annotated[
    EmailStr,
    BeforeValidator(_strip_lower),
    Field(max_length=EMAIL_LENGTH),
    AfterValidator(_normalized_email),
]
# Never truncated: a password longer than the limit is refused, not cut.
Password = Annotated[str, Field(min_length=8, max_length=PASSWORD_MAX_LENGTH)]
CurrentPassword = Annotated[str, Field(max_length=PASSWORD_MAX_LENGTH)]
FullName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH)
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str)]
Role = Literal["customer", "admin"]
# A link token from a verification or reset email; a wrong one of a plausible length is
# 400 invalid_token, an absurdly long one a malformed request.
LinkToken = Annotated[str, Field(min_length=1, max_length=TOKEN_MAX_LENGTH)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Request):
    email: Email
    password: Password
    full_name: FullName
    # The language of the account's mail.
    language: Language = "id"


class UserUpdate(_Request):
    """``PATCH /users/me``: only the fields given change; ``null`` clears phone/address.
    A new ``email`` needs ``current_password`` too."""

    full_name: FullName | None = None
    phone: Phone | None = None
    address: Address | None = None
    email: Email | None = None
    current_password: CurrentPassword | None = None
    # Order mail on or off (security mail always goes), and the language of all mail.
    order_emails: StrictBool | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> UserUpdate:
        for name in ("full_name", "email", "order_emails", "language"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PasswordChange(_Request):
    current_password: CurrentPassword
    new_password: Password


class EmailVerification(_Request):
    token: LinkToken


class PasswordResetRequest(_Request):
    email: Email


class PasswordReset(_Request):
    token: LinkToken
    new_password: Password


class Accepted(BaseModel):
    """A request taken on; what follows happens in the background."""

    detail: str


class UserPublic(BaseModel):
    """The profile a user sees of themself."""

    id: str
    email: str
    full_name: str
    phone: str | None
    address: str | None
    role: Role
    active: bool
    created_at: Timestamp
    email_verified: bool
    order_emails: bool
    language: Language


class UserPage(Page[UserPublic]):
    """A page of accounts."""


class UserAdminUpdate(_Request):
    role: Role | None = None
    # Strict: 0 or "false" is no boolean (JSON has true and false).
    active: StrictBool | None = None


class InternalUser(BaseModel):
    """What another service learns about a user (order validation)."""

    id: str
    email: str
    full_name: str
    role: Role
    active: bool
    email_verified: bool


class TokenRevocation(BaseModel):
    user_id: str
    # Epoch seconds with microseconds: refuse this user's tokens whose iat is earlier.
    not_before: float


class TokenRevocations(BaseModel):
    """Every user whose tokens were revoked within the last ``horizon_seconds``."""

    revocations: list[TokenRevocation]
    horizon_seconds: int


# Money is whole rupiah; the bounds only keep a confused sender from storing nonsense.
# Strict: false or 5.0 is no amount.
Amount = Annotated[StrictInt, Field(ge=0, le=10**13)]


class OrderLineSummary(_Request):
    product_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    unit_price: Amount
    line_total: Amount


class OrderSummary(_Request):
    """What an order's mail shows: its lines, total and the note of this status change
    (e.g. the tracking note of ``shipped``)."""

    lines: Annotated[list[OrderLineSummary], Field(max_length=200)]
    total: Amount
    note: Annotated[str | None, Field(max_length=500)] = None


class NotificationCreate(_Request):
    event_id: Annotated[str, Field(min_length=1, max_length=100)]
    user_id: Annotated[str, Field(min_length=1, max_length=36)]
    type: Annotated[str, Field(min_length=1, max_length=64)]
    order_id: Annotated[str | None, Field(max_length=64)] = None
    status: Annotated[str | None, Field(max_length=32)] = None
    message: Annotated[str, Field(min_length=1, max_length=1000)]
    occurred_at: Instant
    # Sent by the Order-Service's relay for the order mail; older senders omit it.
    order: OrderSummary | None = None


class NotificationBatch(_Request):
    """Up to 100 notifications in one request: how the Order-Service's outbox relay
    hands over what it has due."""

    events: Annotated[list[NotificationCreate], Field(min_length=1, max_length=100)]


class NotificationOutcome(BaseModel):
    """What became of one event of a batch: ``stored`` now, already stored before
    (``duplicate``), or not stored because its user is unknown (``unknown_user``)."""

    event_id: str
    outcome: Literal["stored", "duplicate", "unknown_user"]


class NotificationBatchResult(BaseModel):
    results: list[NotificationOutcome]


class NotificationPublic(BaseModel):
    """A notification as the inbox answers it (the domain's value and the answer alike)."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    order_id: str | None
    status: str | None
    message: str
    read: bool
    occurred_at: Timestamp
    created_at: Timestamp


class NotificationPage(Page[NotificationPublic]):
    """A page of your notifications."""


class LogoutRequest(_Request):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


class JWKS(BaseModel):
    keys: list[dict[str, str]]


class DeliveryPublic(BaseModel):
    """One message of the delivery ledger, as an admin sees it (never its content)."""

    model_config = ConfigDict(frozen=True)

    id: str
    channel: str
    recipient: str
    user_id: str | None
    order_id: str | None
    template: str
    language: str
    state: Literal["pending", "sent", "failed", "dropped"]
    attempts: int
    last_error: str | None
    created_at: Timestamp
    updated_at: Timestamp
    sent_at: Timestamp | None
    next_attempt_at: Timestamp


class DeliveryPage(Page[DeliveryPublic]):
    """A page of the delivery ledger."""
