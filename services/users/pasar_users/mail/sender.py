"""The sender job: drains the outbox (``deliveries``) into a transport and keeps the ledger.

One run (``send_due``):

1. claims up to ``mail_batch_size`` due pending deliveries with ``claim_with_lease``
   (``SKIP LOCKED`` on server databases, so replicas take different rows; the lease
   pushes ``next_attempt_at`` forward, so a crashed sender's claim lapses and another
   sends it later);
2. in one transaction, resolves each recipient, drops what must not go (a reset for an
   unknown address, a verification already done or for an old address, order mail the
   customer turned off), mints the single-use link of a verification or reset (links
   are minted now, never stored in the outbox) and fixes each message's Message-ID;
3. renders and hands the messages to the transport, ``mail_concurrency`` at a time,
   outside any transaction;
4. records every outcome in one transaction: ``sent``; ``failed`` for a permanent
   refusal or the last allowed attempt; otherwise pending again after an exponential
   backoff with jitter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Clock, Database, retrying
from pasar_kit.tracing import span_from_traceparent
from pasar_kit.workers import claim_with_lease, retry_delay
from pasar_users import email_tokens
from pasar_users.mail.render import Renderer
from pasar_users.mail.transports import (
    DeliveryFailure,
    Outgoing,
    PermanentFailure,
    Transport,
)
from pasar_users.tables import AnyRow, deliveries, users

log = logging.getLogger("pasar.users.mail")

ERROR_LENGTH = 1000


@dataclass(frozen=True)
class Policy:
    batch_size: int = 50
    concurrency: int = 8
    max_attempts: int = 10
    retry_base_seconds: float = 5
    retry_max_seconds: float = 900
    timeout_seconds: float = 30
    verification_ttl: timedelta = timedelta(hours=48)
    reset_ttl: timedelta = timedelta(minutes=30)

    @property
    def lease(self) -> timedelta:
        """Long enough for a whole batch at the worst (every send timing out), so a
        claim lapses only when its sender is gone."""
        rounds = math.ceil(self.batch_size / self.concurrency)
        return timedelta(seconds=rounds * (self.timeout_seconds + 5) + 60)


@dataclass
class Batch:
    """What one run did."""

    claimed: int = 0
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    retrying: int = 0


@dataclass
class _Job:
    row: AnyRow
    language: str
    context: dict[str, Any]
    name: str | None
    message_id: str


@dataclass
class _Plan:
    jobs: list[_Job] = field(default_factory=list)
    dropped: int = 0


_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.full_name,
    users.c.active,
    users.c.role,
    users.c.language,
    users.c.order_emails,
    users.c.email_verified_at,
)
_SET_MESSAGE_ID = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(message_id=bindparam("b_message_id"))
)
_DROP = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.state == "pending")
    .values(state="dropped", last_error=bindparam("b_error"), updated_at=bindparam("b_now"))
)
_SENT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.state == "pending")
    .values(
        state="sent",
        attempts=deliveries.c.attempts + 1,
        sent_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)
_FAILED_ATTEMPT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.state == "pending")
    .values(
        state=bindparam("b_state"),
        attempts=deliveries.c.attempts + 1,
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
        updated_at=bindparam("b_now"),
    )
)


class Sender:
    def __init__(
        self,
        *,
        db: Database,
        renderer: Renderer,
        transport: Transport,
        policy: Policy,
        clock: Clock,
    ) -> None:
        self.db = db
        self.renderer = renderer
        self.transport = transport
        self.policy = policy
        self.clock = clock

    async def tick(self) -> int:
        """The periodic job: non-zero (run again at once) only for a full batch that
        met no temporary failure, so an outage waits for the next tick, not a hot loop."""
        batch = await self.send_due()
        return int(batch.claimed >= self.policy.batch_size and batch.retrying == 0)

    async def send_due(self) -> Batch:
        now = self.clock()
        rows = await claim_with_lease(
            self.db,
            self._due(now),
            table=deliveries,
            lease={"next_attempt_at": now + self.policy.lease},
        )
        if not rows:
            return Batch()
        plan = await retrying(lambda: self._prepare(rows, now))
        semaphore = asyncio.Semaphore(self.policy.concurrency)

        async def send(job: _Job) -> BaseException | None:
            async with semaphore:
                try:
                    await self._send(job)
                except DeliveryFailure as exc:
                    return exc
                except Exception as exc:  # a template or data bug: do not retry forever
                    log.exception("delivery %s could not be rendered", job.row.id)
                    return PermanentFailure(f"{type(exc).__name__}: {exc}")
            return None

        results = await asyncio.gather(*(send(job) for job in plan.jobs))
        batch = Batch(claimed=len(rows), dropped=plan.dropped)
        await retrying(lambda: self._record(plan.jobs, results, batch))
        return batch

    def _due(self, now: datetime) -> Select[Any]:
        return (
            select(
                deliveries.c.id,
                deliveries.c.recipient,
                deliveries.c.user_id,
                deliveries.c.order_id,
                deliveries.c.template,
                deliveries.c.language,
                deliveries.c.context,
                deliveries.c.attempts,
                deliveries.c.message_id,
                deliveries.c.traceparent,
            )
            .where(deliveries.c.state == "pending", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(self.policy.batch_size)
        )

    async def _prepare(self, rows: Sequence[AnyRow], now: datetime) -> _Plan:
        plan = _Plan()
        async with self.db.write() as conn:
            by_id, by_email = await _recipients(conn, rows)
            drops: list[dict[str, Any]] = []
            message_ids: list[dict[str, Any]] = []
            for row in rows:
                user = by_id.get(row.user_id) if row.user_id else None
                if row.template == "password_reset" and user is None:
                    user = by_email.get(row.recipient)
                reason = _reason_to_drop(row, user)
                if reason is not None:
                    log.info("delivery %s (%s) dropped: %s", row.id, row.template, reason)
                    drops.append({"b_id": row.id, "b_error": reason, "b_now": now})
                    continue
                try:
                    context = json.loads(row.context or "{}")
                except ValueError:  # a template that needs it fails to render: failed
                    context = {}
                language = row.language
                if row.template in ("verify_email", "password_reset"):
                    assert user is not None
                    # The account's own language: a reset request does not know it.
                    language = user.language
                    context.update(await self._link(conn, row.template, user, now))
                message_id = row.message_id or self.renderer.message_id(row.id)
                if row.message_id is None:
                    message_ids.append({"b_id": row.id, "b_message_id": message_id})
                plan.jobs.append(
                    _Job(
                        row=row,
                        language=language,
                        context=context,
                        name=user.full_name if user is not None else None,
                        message_id=message_id,
                    )
                )
            if drops:
                await conn.execute(_DROP, drops)
            if message_ids:
                await conn.execute(_SET_MESSAGE_ID, message_ids)
        plan.dropped = len(drops)
        return plan

    async def _link(
        self, conn: AsyncConnection, template: str, user: AnyRow, now: datetime
    ) -> dict[str, Any]:
        """A fresh single-use link (an earlier unused one of the purpose stops working)."""
        if template == "verify_email":
            ttl = self.policy.verification_ttl
            token = await email_tokens.issue(
                conn, user_id=user.id, purpose="verify_email", email=user.email, now=now, ttl=ttl
            )
            return {
                "link": self.renderer.link(f"/verify-email?token={token}"),
                "hours": int(ttl.total_seconds() // 3600),
            }
        ttl = self.policy.reset_ttl
        token = await email_tokens.issue(
            conn, user_id=user.id, purpose="password_reset", email=user.email, now=now, ttl=ttl
        )
        return {
            "link": self.renderer.link(f"/reset-password?token={token}"),
            "minutes": int(ttl.total_seconds() // 60),
        }

    async def _send(self, job: _Job) -> None:
        # The send continues the trace of the request that caused the message.
        with span_from_traceparent("mail send", job.row.traceparent, kind=SpanKind.PRODUCER):
            await self._render_and_send(job)

    async def _render_and_send(self, job: _Job) -> None:
        rendered = self.renderer.render(
            job.row.template, language=job.language, context=job.context, name=job.name
        )
        message = self.renderer.message(
            rendered,
            recipient=job.row.recipient,
            message_id=job.message_id,
            language=job.language,
            now=self.clock(),
        )
        await self.transport.send(
            Outgoing(delivery_id=job.row.id, message=message, links=rendered.links),
            now=self.clock(),
        )

    async def _record(
        self, jobs: list[_Job], results: list[BaseException | None], batch: Batch
    ) -> None:
        now = self.clock()
        sent: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        batch.sent = batch.failed = batch.retrying = 0
        for job, result in zip(jobs, results, strict=True):
            if result is None:
                sent.append({"b_id": job.row.id, "b_now": now})
                continue
            attempts = job.row.attempts + 1
            error = str(result)[:ERROR_LENGTH] or type(result).__name__
            final = isinstance(result, PermanentFailure) or attempts >= self.policy.max_attempts
            if final:
                batch.failed += 1
                log.warning("delivery %s (%s) failed: %s", job.row.id, job.row.template, error)
            else:
                batch.retrying += 1
                log.warning(
                    "delivery %s (%s) not sent (attempt %d), retrying: %s",
                    job.row.id,
                    job.row.template,
                    attempts,
                    error,
                )
            retry_at = now + retry_delay(
                attempts, base=self.policy.retry_base_seconds, cap=self.policy.retry_max_seconds
            )
            failed.append(
                {
                    "b_id": job.row.id,
                    "b_state": "failed" if final else "pending",
                    "b_error": error,
                    "b_next": retry_at,
                    "b_now": now,
                }
            )
        batch.sent = len(sent)
        async with self.db.write() as conn:
            if sent:
                await conn.execute(_SENT, sent)
            if failed:
                await conn.execute(_FAILED_ATTEMPT, failed)


async def _recipients(
    conn: AsyncConnection, rows: Sequence[AnyRow]
) -> tuple[dict[str, AnyRow], dict[str, AnyRow]]:
    """The accounts the batch names, by id and (for reset requests) by email."""
    ids = {row.user_id for row in rows if row.user_id}
    emails = {row.recipient for row in rows if row.template == "password_reset" and not row.user_id}
    if not ids and not emails:
        return {}, {}
    found = (
        await conn.execute(
            select(*_USER_COLUMNS).where(
                or_(users.c.id.in_(sorted(ids)), users.c.email.in_(sorted(emails)))
            )
        )
    ).all()
    return {user.id: user for user in found}, {user.email: user for user in found}


def _reason_to_drop(row: AnyRow, user: AnyRow | None) -> str | None:
    """Why this message must not go (it is then ``dropped``), or None."""
    if row.template == "password_reset":
        if user is None or not user.active:
            return "no account with this email"
        return None
    if row.user_id is None:
        return None  # an address with no account behind it by design
    if user is None:
        return "the account no longer exists"
    if row.template == "verify_email":
        if not user.active:
            return "the account is deactivated"
        if user.email_verified_at is not None:
            return "the email is already verified"
        if user.email != row.recipient:
            return "the account's email changed since"
    if row.template == "order_status" and not user.order_emails:
        return "the customer turned order emails off"
    if row.template == "admin_new_order" and not (user.active and user.role == "admin"):
        return "no longer an active admin"
    return None
