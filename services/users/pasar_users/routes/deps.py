"""Dependencies declared once, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pasar_kit.auth import Admin, Principal
from pasar_kit.db import Database
from pasar_users import accounts
from pasar_users.grants import Authority
from pasar_users.passwords import Passwords


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


async def _active_admin(principal: Admin, db: Annotated[Database, Depends(_db)]) -> Principal:
    # The role in a token can be minutes stale; admin powers are checked at the source.
    await accounts.require_admin(db=db, user_id=principal.subject)
    return principal


DatabaseDep = Annotated[Database, Depends(_db)]
AuthorityDep = Annotated[Authority, Depends(_authority)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
ActiveAdmin = Annotated[Principal, Depends(_active_admin)]
