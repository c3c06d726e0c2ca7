"""token revocations, the attempts table of the throttles, normalised emails

* ``users.tokens_not_before`` (indexed): access tokens issued earlier no longer count.
* ``attempts`` replaces ``login_failures``: every throttle (logins, the current password,
  service clients, registrations) in one append-only table, apart by ``kind``. The old
  rows are dropped: at worst a guesser gets a fresh count once, at the upgrade.
* Emails are rewritten in the stored form of ``accounts.normalize_email`` (NFC, lower
  case, IDNA domains in Unicode), and on MariaDB compared byte for byte (``utf8mb4_bin``)
  as on SQLite and PostgreSQL, instead of by a collation that calls ``jose`` and ``josé``
  the same address.

Two rows that normalise to one address: the row already stored in that form keeps it
(it is the one a login found), else the oldest. The others keep their old spelling,
which no login reaches any more, and are logged as a warning with their ids so an admin
can merge or rename them: changing someone's address to an invented one, or deleting an
account, is not a migration's decision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

import idna
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import pasar_kit.db

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _exact(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def normalize_email(email: str) -> str:
    """accounts.normalize_email as of this revision (frozen here: a migration must not
    change meaning when the application code does)."""
    email = unicodedata.normalize("NFC", email.strip())
    local, at, domain = email.rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", email.lower())
    try:
        domain = idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError):
        domain = domain.lower()
    return unicodedata.normalize("NFC", f"{local.lower()}@{domain.lower()}")


def _is_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tokens_not_before", pasar_kit.db.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_users_tokens_not_before", ["tokens_not_before"], unique=False)

    if _is_mysql():
        op.execute(
            "ALTER TABLE users MODIFY email VARCHAR(254) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        )
    _normalise_emails()

    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_address_failed_at")
        batch_op.drop_index("ix_login_failures_account_failed_at")
    op.drop_table("login_failures")

    op.create_table(
        "attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", _exact(254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_kind_subject_at", ["kind", "subject", "at"])
        batch_op.create_index("ix_attempts_kind_address_at", ["kind", "address", "at"])


def _normalise_emails() -> None:
    bind = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.String()),
        sa.column("email", sa.String()),
        sa.column("created_at", pasar_kit.db.UTCDateTime()),
    )
    rows = bind.execute(
        sa.select(users.c.id, users.c.email, users.c.created_at).order_by(
            users.c.created_at, users.c.id
        )
    ).all()
    groups: dict[str, list[sa.Row[tuple[str, str, object]]]] = defaultdict(list)
    for row in rows:
        groups[normalize_email(row.email)].append(row)
    for email, members in groups.items():
        keeper = next((m for m in members if m.email == email), members[0])
        if keeper.email != email:
            bind.execute(sa.update(users).where(users.c.id == keeper.id).values(email=email))
        others = [m.id for m in members if m is not keeper]
        if others:
            log.warning(
                "users %s normalise to the address of user %s (%s); they keep their old "
                "spelling, which no login reaches: merge or rename them",
                ", ".join(others),
                keeper.id,
                email,
            )


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_kind_address_at")
        batch_op.drop_index("ix_attempts_kind_subject_at")
    op.drop_table("attempts")

    op.create_table(
        "login_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account", sa.String(length=262), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("failed_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_failures_account_failed_at", ["account", "failed_at"], unique=False
        )
        batch_op.create_index(
            "ix_login_failures_address_failed_at", ["address", "failed_at"], unique=False
        )

    if _is_mysql():
        # Back to the table's collation; emails stay normalised (still valid before 0002).
        op.execute("ALTER TABLE users MODIFY email VARCHAR(254) NOT NULL")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_tokens_not_before")
        batch_op.drop_column("tokens_not_before")
