"""HTTP routes: parse, call one domain function, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse

from pasar_kit.auth import Admin, CurrentUser, Principal
from pasar_kit.db import utcnow
from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import PROBLEM_JSON, ValidationFailed, problems
from pasar_orders.bootstrap import OUTBOX, SETTLEMENT
from pasar_orders.carts import CartLine, get_cart, save_cart
from pasar_orders.deps import CreatedFrom, CreatedTo, OrderId, RuntimeDep
from pasar_orders.idempotency import validate_key
from pasar_orders.online_payments import (
    current_payment,
    list_notifications,
    receive_notification,
    start_payment,
)
from pasar_orders.payments import Card, pay_order
from pasar_orders.placement import place_order
from pasar_orders.problems import PaymentsDisabled
from pasar_orders.queries import get_order, list_orders
from pasar_orders.schemas import (
    CartIn,
    CartPublic,
    NotificationAnswer,
    OrderCreate,
    OrderList,
    OrderPaymentPublic,
    OrderPublic,
    OrderStats,
    PaymentIn,
    PaymentNotificationList,
    PaymentNotificationPublic,
    PaymentPublic,
    PaymentStart,
    StatusChange,
    StatusCounts,
)
from pasar_orders.stats import order_stats
from pasar_orders.status import OrderStatus
from pasar_orders.tracking import Actor, cancel_order, change_status

router = APIRouter(tags=["orders"])


def _actor(principal: Principal) -> Actor:
    return Actor(id=principal.subject, is_admin=principal.is_admin)


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderPublic,
    operation_id="place_order",
    responses=problems(401, 403, 409, 422, 503),
)
async def place(
    body: OrderCreate,
    user: CurrentUser,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Repeat a placement safely: the same key and body return the first answer.",
        ),
    ] = None,
) -> JSONResponse:
    """Place an order: prices come from the Product-Service, stock is reserved. 403
    ``user_inactive`` for a deactivated account, ``email_not_verified`` for an account
    whose email is not verified when the shop requires it."""
    placed = await place_order(
        db=runtime.db,
        users=runtime.users,
        products=runtime.products,
        policy=runtime.policy,
        user_id=user.subject,
        request=body,
        idempotency_key=validate_key(idempotency_key) if idempotency_key is not None else None,
        now=utcnow(),
    )
    if not placed.replayed:
        runtime.nudge(OUTBOX)
    headers = {"Idempotent-Replayed": "true"} if placed.replayed else {}
    if placed.status == 201:
        headers["Location"] = f"/orders/{placed.body['id']}"
    return JSONResponse(
        placed.body,
        status_code=placed.status,
        headers=headers,
        media_type=PROBLEM_JSON if placed.status >= 400 else None,
    )


@router.get(
    "/orders",
    response_model=OrderList,
    operation_id="list_orders",
    responses=problems(401, 403, 422),
)
async def index(
    user: CurrentUser,
    runtime: RuntimeDep,
    limit: Limit = 20,
    offset: Offset = 0,
    user_id: Annotated[str | None, Query(description="Admins only: one customer's orders.")] = None,
    status: OrderStatus | None = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
) -> OrderList:
    """Your orders, newest first; an admin sees everyone's and may filter."""
    items, total = await list_orders(
        db=runtime.db,
        viewer_id=user.subject,
        viewer_is_admin=user.is_admin,
        user_id=user_id,
        status=status.value if status is not None else None,
        limit=limit,
        offset=offset,
        created_from=created_from,
        created_to=created_to,
    )
    return OrderList(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/orders/{order_id}",
    response_model=OrderPublic,
    operation_id="get_order",
    responses=problems(401, 403, 404),
)
async def show(user: CurrentUser, order_id: OrderId, runtime: RuntimeDep) -> OrderPublic:
    """One order with its status history (its owner or an admin only)."""
    return await get_order(
        db=runtime.db, order_id=order_id, viewer_id=user.subject, viewer_is_admin=user.is_admin
    )


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderPublic,
    operation_id="cancel_order",
    responses=problems(401, 403, 404, 409),
)
async def cancel(user: CurrentUser, order_id: OrderId, runtime: RuntimeDep) -> OrderPublic:
    """Cancel from pending_payment or processing; the stock goes back."""
    order = await cancel_order(
        db=runtime.db,
        products=runtime.products,
        order_id=order_id,
        actor=_actor(user),
        now=utcnow(),
    )
    runtime.nudge(OUTBOX)
    runtime.nudge(SETTLEMENT)
    return order


@router.post(
    "/orders/{order_id}/status",
    response_model=OrderPublic,
    operation_id="change_order_status",
    responses=problems(401, 403, 404, 409, 422, 503),
)
async def set_status(
    admin: Admin, order_id: OrderId, body: StatusChange, runtime: RuntimeDep
) -> OrderPublic:
    """Move an order along: processing -> shipped -> completed, or cancel it."""
    order = await change_status(
        db=runtime.db,
        products=runtime.products,
        order_id=order_id,
        target=body.status,
        actor=_actor(admin),
        note=body.note,
        now=utcnow(),
    )
    runtime.nudge(OUTBOX)
    if body.status == OrderStatus.CANCELLED:
        runtime.nudge(SETTLEMENT)
    return order


@router.post(
    "/orders/{order_id}/payments",
    response_model=OrderPaymentPublic,
    operation_id="pay_order",
    responses=problems(401, 402, 403, 404, 409, 422, 503),
)
async def pay(
    user: CurrentUser,
    order_id: OrderId,
    runtime: RuntimeDep,
    body: Annotated[PaymentIn | PaymentStart | None, Body()] = None,
) -> OrderPaymentPublic:
    """Pay a pending order. Test provider: by card (4242424242424242 approves). Midtrans
    or Xendit: no card; makes (once) the gateway payment and answers it as ``payment``,
    whose ``redirect_url`` is where the customer pays; the order moves on when the
    gateway confirms."""
    if runtime.gateway is not None:
        if isinstance(body, PaymentIn):
            raise ValidationFailed(
                "This shop is paid through its gateway's page: send no card details.",
                errors=[{"loc": ["body"], "msg": "send {} or no body"}],
                error_count=1,
            )
        order, payment = await start_payment(
            db=runtime.db,
            gateway=runtime.gateway,
            order_id=order_id,
            payer=_actor(user),
            timing=runtime.payment_timing,
            now=utcnow(),
        )
        return OrderPaymentPublic(**order.model_dump(), payment=payment)
    if runtime.payments is None:
        raise PaymentsDisabled("Orders are not paid online in this shop.")
    if not isinstance(body, PaymentIn):
        raise ValidationFailed(
            "body: the card number, expiry and CVC are required",
            errors=[{"loc": ["body", "card_number"], "msg": "Field required"}],
            error_count=1,
        )
    paid = await pay_order(
        db=runtime.db,
        products=runtime.products,
        provider=runtime.payments,
        order_id=order_id,
        payer=_actor(user),
        card=Card(
            number=body.card_number.get_secret_value(),
            expiry=body.expiry,
            cvc=body.cvc.get_secret_value(),
        ),
        now=utcnow(),
    )
    runtime.nudge(OUTBOX)
    return OrderPaymentPublic(**paid.model_dump())


@router.get(
    "/orders/{order_id}/payment",
    response_model=PaymentPublic,
    operation_id="get_order_payment",
    responses=problems(401, 403, 404),
)
async def show_payment(user: CurrentUser, order_id: OrderId, runtime: RuntimeDep) -> PaymentPublic:
    """The order's latest gateway payment: its page, QRIS string or virtual account
    number, and its status (its owner or an admin only)."""
    return await current_payment(
        db=runtime.db,
        order_id=order_id,
        viewer=_actor(user),
        provider=runtime.gateway.name if runtime.gateway is not None else None,
    )


@router.post(
    "/payments/notifications/{provider}",
    response_model=NotificationAnswer,
    operation_id="receive_payment_notification",
    tags=["payments"],
    responses=problems(403, 404, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def notification(provider: str, request: Request, runtime: RuntimeDep) -> NotificationAnswer:
    """A gateway's payment notification (public; verified by its signature or token).
    Stored whatever it says; applied once however often it is sent."""
    outcome = await receive_notification(
        db=runtime.db,
        products=runtime.products,
        gateway=runtime.gateway,
        provider=provider,
        body=await request.body(),
        headers={k.lower(): v for k, v in request.headers.items()},
        now=utcnow(),
    )
    runtime.nudge(OUTBOX)
    runtime.nudge(SETTLEMENT)
    return NotificationAnswer(outcome=outcome)


@router.get(
    "/admin/payment-notifications",
    response_model=PaymentNotificationList,
    operation_id="list_payment_notifications",
    tags=["admin"],
    responses=problems(401, 403, 422),
)
async def notifications(
    _admin: Admin,
    runtime: RuntimeDep,
    limit: Limit = 20,
    offset: Offset = 0,
    order_id: Annotated[str | None, Query(max_length=36, description="One order's only.")] = None,
) -> PaymentNotificationList:
    """What the gateways said, newest first: every notification as received, whether it
    verified, and what the shop did with it."""
    rows, total = await list_notifications(
        db=runtime.db, order_id=order_id, limit=limit, offset=offset
    )
    return PaymentNotificationList(
        items=[PaymentNotificationPublic.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/admin/order-stats",
    response_model=OrderStats,
    operation_id="order_stats",
    tags=["admin"],
    responses=problems(401, 403, 422),
)
async def stats(
    _admin: Admin,
    runtime: RuntimeDep,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
) -> OrderStats:
    """Orders by status and revenue (orders not cancelled) over a window, or all time."""
    figures = await order_stats(db=runtime.db, created_from=created_from, created_to=created_to)
    return OrderStats(
        by_status=StatusCounts(**{s.value: n for s, n in figures.by_status.items()}),
        orders=figures.orders,
        revenue=figures.revenue,
        currency=runtime.settings.currency,
    )


@router.get(
    "/cart",
    response_model=CartPublic,
    operation_id="get_cart",
    tags=["cart"],
    responses=problems(401, 403),
)
async def show_cart(user: CurrentUser, runtime: RuntimeDep) -> CartPublic:
    """Your saved cart (empty, with no ``updated_at``, if you never saved one)."""
    cart = await get_cart(db=runtime.db, user_id=user.subject)
    return CartPublic.model_validate(cart, from_attributes=True)


@router.put(
    "/cart",
    response_model=CartPublic,
    operation_id="save_cart",
    tags=["cart"],
    responses=problems(401, 403, 422),
)
async def replace_cart(body: CartIn, user: CurrentUser, runtime: RuntimeDep) -> CartPublic:
    """Replace your saved cart with this one; ``{"items": []}`` empties it."""
    cart = await save_cart(
        db=runtime.db,
        user_id=user.subject,
        items=[CartLine(product_id=i.product_id, quantity=i.quantity) for i in body.items],
        now=utcnow(),
    )
    return CartPublic.model_validate(cart, from_attributes=True)
