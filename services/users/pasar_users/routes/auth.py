"""Registration, the OAuth 2.0 token endpoint, logout, the JWKS, and the links mailed to
a user (verifying the email, resetting a forgotten password)."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, Form, Request, Response, status
from sqlalchemy.exc import SQLAlchemyError

from pasar_kit.auth import jwks_document
from pasar_kit.problems import problems
from pasar_users import accounts, grants, keys, tokens
from pasar_users.bootstrap import SEND_MAIL
from pasar_users.deps import (
    AuthorityDep,
    ClientAddress,
    ClockDep,
    DatabaseDep,
    JobsDep,
    Now,
    PasswordsDep,
    ThrottleDep,
    client_address,
)
from pasar_users.problems import (
    NO_STORE,
    InvalidClient,
    InvalidClientAddress,
    InvalidRequest,
    SigningKeyUnavailable,
    UnsupportedGrantType,
)
from pasar_users.schemas import (
    JWKS,
    PASSWORD_MAX_LENGTH,
    Accepted,
    EmailVerification,
    LogoutRequest,
    PasswordReset,
    PasswordResetRequest,
    TokenResponse,
    UserCreate,
    UserPublic,
)
from pasar_users.tables import EMAIL_LENGTH

log = logging.getLogger("pasar.users")
router = APIRouter(tags=["auth"])

FormField = Annotated[str | None, Form()]

# Every field of a token request is bounded before it reaches a query or a hash; a value
# longer than any valid one is a malformed request (400 invalid_request), never a 500.
CLIENT_ID_LENGTH = 100
FIELD_LIMITS = {
    "grant_type": 64,
    "username": EMAIL_LENGTH,
    "password": PASSWORD_MAX_LENGTH,
    "refresh_token": 512,
    "client_id": CLIENT_ID_LENGTH,
    "client_secret": 1024,
    "scope": 1000,
}


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    operation_id="register",
    responses=problems(400, 409, 422, 429, 503),
)
async def register(
    body: UserCreate,
    db: DatabaseDep,
    passwords: PasswordsDep,
    throttle: ThrottleDep,
    address: ClientAddress,
    now: Now,
    jobs: JobsDep,
    response: Response,
) -> UserPublic:
    """Create a customer account (a limited number per client address and hour) and
    send it a verification email, in ``language`` (``id`` unless given)."""
    user = await accounts.register(
        db=db,
        passwords=passwords,
        throttle=throttle,
        address=address,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        language=body.language,
        now=now,
    )
    jobs.nudge(SEND_MAIL)
    response.headers["Location"] = "/users/me"
    return UserPublic.model_validate(user, from_attributes=True)


@router.post(
    "/auth/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="verify_email",
    responses=problems(400, 422),
)
async def verify_email(body: EmailVerification, db: DatabaseDep, now: Now) -> Response:
    """Mark the address verified with the token of a verification link. The link works
    once: 400 ``invalid_token`` when it is unknown, used, replaced by a newer one,
    expired, or for an address the account no longer has."""
    await accounts.verify_email(db=db, token=body.token, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# One answer for every address, byte for byte: it must not tell whether an account exists.
RESET_REQUESTED = Accepted(
    detail="If an account uses this address, a link to reset its password is on its way."
)


@router.post(
    "/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="request_password_reset",
    responses=problems(400, 422, 429),
)
async def request_password_reset(
    body: PasswordResetRequest,
    db: DatabaseDep,
    throttle: ThrottleDep,
    address: ClientAddress,
    now: Now,
    jobs: JobsDep,
) -> Accepted:
    """Mail a password-reset link to ``email`` if an account uses it. Always 202 with
    the same body, after the same work, whether or not one does; an address asked for
    too often gets nothing more for a while (still 202). Too many requests from one
    client address: 429 ``too_many_password_resets`` with ``Retry-After``."""
    if await accounts.request_password_reset(
        db=db, throttle=throttle, email=body.email, address=address, now=now
    ):
        jobs.nudge(SEND_MAIL)
    return RESET_REQUESTED


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="confirm_password_reset",
    responses=problems(400, 422, 503),
)
async def confirm_password_reset(
    body: PasswordReset,
    db: DatabaseDep,
    passwords: PasswordsDep,
    clock: ClockDep,
    jobs: JobsDep,
) -> Response:
    """Set a new password with the token of a reset link (it works once). Every refresh
    token of the account stops working and every access token issued before is revoked;
    the address counts as verified. 400 ``invalid_token`` when the link is no good."""
    await accounts.reset_password(
        db=db, passwords=passwords, token=body.token, new_password=body.new_password, clock=clock
    )
    jobs.nudge(SEND_MAIL)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _basic_client(request: Request) -> tuple[str, str] | None:
    """``client_secret_basic`` (RFC 6749 section 2.3.1): id and secret in the header."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient("Malformed Basic credentials.") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("Malformed Basic credentials.")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if len(client_id) > CLIENT_ID_LENGTH or len(secret) > FIELD_LIMITS["client_secret"]:
        raise InvalidClient("Malformed Basic credentials.")
    return client_id, secret


def _check_lengths(fields: dict[str, str | None]) -> None:
    for name, value in fields.items():
        limit = FIELD_LIMITS[name]
        if value is not None and len(value) > limit:
            raise InvalidRequest(f"{name} is too long (at most {limit} characters).")


def _token_client_address(request: Request) -> str:
    try:
        return client_address(request)
    except InvalidClientAddress as exc:
        raise InvalidRequest("The client address is not an IP address.") from exc


@router.post(
    "/auth/token",
    operation_id="token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=problems(400, 401, 429, 503),
)
async def token(
    request: Request,
    response: Response,
    authority: AuthorityDep,
    clock: ClockDep,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
    scope: FormField = None,
) -> TokenResponse:
    """OAuth 2.0 token endpoint (form-encoded): ``password``, ``refresh_token`` and
    ``client_credentials`` grants. Errors follow RFC 6749 section 5.2."""
    response.headers.update(NO_STORE)
    _check_lengths(
        {
            "grant_type": grant_type,
            "username": username,
            "password": password,
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
    )
    address = _token_client_address(request)
    if not grant_type:
        raise InvalidRequest("grant_type is required.")
    if grant_type == "password":
        if not username or not password:
            raise InvalidRequest("username and password are required.")
        grant = await grants.password_grant(
            authority=authority, username=username, password=password, address=address, clock=clock
        )
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidRequest("refresh_token is required.")
        grant = await grants.refresh_grant(
            authority=authority, refresh_token=refresh_token, now=clock()
        )
    elif grant_type == "client_credentials":
        basic = _basic_client(request)
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise InvalidRequest("client_id and client_secret are required.")
        grant = await grants.client_credentials_grant(
            authority=authority,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            address=address,
        )
    else:
        raise UnsupportedGrantType(f"Grant type {grant_type[:50]!r} is not supported.")
    return TokenResponse(
        access_token=grant.access_token,
        expires_in=grant.expires_in,
        refresh_token=grant.refresh_token,
        scope=grant.scope,
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="logout",
    responses=problems(422),
)
async def logout(body: LogoutRequest, db: DatabaseDep, now: Now) -> Response:
    """The refresh token's whole family stops working. Unknown tokens are not an error."""
    await tokens.revoke_family_of(db=db, token=body.refresh_token, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/.well-known/jwks.json", operation_id="jwks", responses=problems(503))
async def jwks(authority: AuthorityDep, response: Response) -> JWKS:
    """The public keys that verify access tokens, read fresh so a rotation made by any
    replica is published at once."""
    ring = authority.keys
    if not ring.fixed:
        try:
            ring.replace(await keys.load_keys(db=authority.db) or ring.published())
        except (SQLAlchemyError, OSError):
            # The database is down: the keys already loaded still verify every token.
            log.warning("could not reload the signing keys; serving the loaded ones")
    if not ring.loaded:
        raise SigningKeyUnavailable()
    response.headers["Cache-Control"] = "public, max-age=60"
    return JWKS.model_validate(jwks_document(ring.published()))
