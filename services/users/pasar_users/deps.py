"""Dependencies declared once, as ``Annotated`` aliases. All are ``async``: FastAPI runs a
sync dependency in a worker thread, a thread hop per request for a mere attribute read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request

from pasar_kit.auth import Admin, CurrentUser, Principal
from pasar_kit.db import Clock, Database
from pasar_kit.ids import ID_DESCRIPTION, is_id
from pasar_kit.problems import Unauthorized
from pasar_kit.workers import Jobs
from pasar_users import accounts
from pasar_users.accounts import User
from pasar_users.bootstrap import SEND_MAIL, Runtime
from pasar_users.grants import Authority
from pasar_users.passwords import Passwords
from pasar_users.problems import InvalidClientAddress, NotificationNotFound, UserNotFound
from pasar_users.settings import Settings
from pasar_users.throttle import Throttle, address_key


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _db(request: Request) -> Database:
    return _runtime(request).db


async def _authority(request: Request) -> Authority:
    return _runtime(request).authority


async def _jobs(request: Request) -> Jobs:
    return _runtime(request).jobs


async def _passwords(request: Request) -> Passwords:
    return _runtime(request).passwords


async def _throttle(request: Request) -> Throttle:
    return _runtime(request).authority.throttle


async def _settings(request: Request) -> Settings:
    return _runtime(request).settings


async def _nudge_mail(request: Request) -> Callable[[], None]:
    # Called after a commit that enqueued mail: the sender runs now, not at its tick.
    jobs = _runtime(request).jobs
    return lambda: jobs.nudge(SEND_MAIL)


async def _clock(request: Request) -> Clock:
    # The service's clock, so tests can move time without sleeping.
    return _runtime(request).clock


async def _now(request: Request) -> datetime:
    return _runtime(request).clock()


def client_address(request: Request) -> str:
    """The caller's address as the throttles count it. With a trusted proxy, uvicorn puts
    whatever X-Forwarded-For named here, so it is checked before it reaches a query."""
    try:
        return address_key(request.client.host if request.client else None)
    except ValueError as exc:
        raise InvalidClientAddress("The client address is not an IP address.") from exc


async def _client_address(request: Request) -> str:
    return client_address(request)


def issued_at(principal: Principal) -> float:
    try:
        return float(principal.claims["iat"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("The access token's iat is malformed.") from exc


async def _me(principal: CurrentUser, db: Annotated[Database, Depends(_db)]) -> User:
    # The account as it is now: deactivated (403) or its tokens revoked since this one
    # was issued (401) — the same rule the other services apply from the revocation feed.
    return await accounts.get_active_user(
        db=db, user_id=principal.subject, issued_at=issued_at(principal)
    )


async def _active_admin(principal: Admin, db: Annotated[Database, Depends(_db)]) -> Principal:
    # The role in a token can be minutes stale; admin powers are checked at the source.
    await accounts.require_admin(db=db, user_id=principal.subject, issued_at=issued_at(principal))
    return principal


# An id in a path outside the kit's id rule names nothing: 404 at once, no query, no
# echo, as in the other services. Declared after the caller's identity in each route,
# so a caller without a token still hears 401 first.
async def _user_id(user_id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> str:
    if not is_id(user_id):
        raise UserNotFound()
    return user_id


async def _notification_id(
    notification_id: Annotated[str, Path(description=ID_DESCRIPTION)],
) -> str:
    if not is_id(notification_id):
        raise NotificationNotFound()
    return notification_id


DatabaseDep = Annotated[Database, Depends(_db)]
SettingsDep = Annotated[Settings, Depends(_settings)]
NudgeMail = Annotated[Callable[[], None], Depends(_nudge_mail)]
UserId = Annotated[str, Depends(_user_id)]
NotificationId = Annotated[str, Depends(_notification_id)]
AuthorityDep = Annotated[Authority, Depends(_authority)]
# Nudge the mail sender with ``jobs.nudge(SEND_MAIL)`` once the mail's transaction committed.
JobsDep = Annotated[Jobs, Depends(_jobs)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
ThrottleDep = Annotated[Throttle, Depends(_throttle)]
# For an instant that must be read later, under a row lock: the clock itself.
ClockDep = Annotated[Clock, Depends(_clock)]
Now = Annotated[datetime, Depends(_now)]
ClientAddress = Annotated[str, Depends(_client_address)]
Me = Annotated[User, Depends(_me)]
ActiveAdmin = Annotated[Principal, Depends(_active_admin)]
