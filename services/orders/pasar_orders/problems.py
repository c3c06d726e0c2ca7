"""Every way an Order-Service request can fail, one type each (rendered by the kit)."""

from __future__ import annotations

from pasar_kit.problems import Problem


class OrderNotFound(Problem):
    status = 404
    code = "order_not_found"
    title = "Order not found"


class UserInactive(Problem):
    status = 403
    code = "user_inactive"
    title = "This account cannot place orders"


class EmailNotVerified(Problem):
    """The shop asks for a verified email before an order (``require_verified_email``)."""

    status = 403
    code = "email_not_verified"
    title = "Verify your email address before placing an order"


class NotOrderOwner(Problem):
    status = 403
    code = "not_order_owner"
    title = "Only the customer who placed the order may do this"


class OutOfStock(Problem):
    status = 409
    code = "out_of_stock"
    title = "Not enough stock"


class UnknownProduct(Problem):
    status = 422
    code = "unknown_product"
    title = "Unknown or archived product"


class TooManyOfOneProduct(Problem):
    status = 422
    code = "quantity_too_large"
    title = "Too many units of one product"


class InvalidTransition(Problem):
    status = 409
    code = "invalid_transition"
    title = "This status change is not allowed"


class IdempotencyKeyReused(Problem):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency key already used with a different request"


class IdempotencyKeyInFlight(Problem):
    status = 409
    code = "idempotency_key_in_flight"
    title = "A request with this idempotency key is still being processed"


class InvalidIdempotencyKey(Problem):
    status = 422
    code = "invalid_idempotency_key"
    title = "Invalid Idempotency-Key header"


class PaymentDeclined(Problem):
    status = 402
    code = "payment_declined"
    title = "The payment was declined"


class PaymentsDisabled(Problem):
    status = 409
    code = "payments_disabled"
    title = "This shop takes no payments online"


class PaymentWindowClosed(Problem):
    status = 409
    code = "payment_window_closed"
    title = "The order can no longer be paid"


class TooManyUnpaidOrders(Problem):
    status = 409
    code = "too_many_unpaid_orders"
    title = "Too many orders are waiting for payment"


class OrderTotalTooLarge(Problem):
    status = 422
    code = "order_total_too_large"
    title = "The order is worth more than the largest amount allowed"


class PaymentInProgress(Problem):
    status = 409
    code = "payment_in_progress"
    title = "Another payment of this order is still being processed"


class PaymentNotFound(Problem):
    status = 404
    code = "payment_not_found"
    title = "The order has no payment at a gateway"


class PaymentProviderNotFound(Problem):
    status = 404
    code = "payment_provider_not_found"
    title = "This shop takes no payments through that provider"


class NotificationNotVerified(Problem):
    status = 403
    code = "notification_not_verified"
    title = "The notification's signature or token does not verify"


class NotificationMismatch(Problem):
    status = 422
    code = "notification_mismatch"
    title = "The notification reports an amount or currency the shop did not ask for"
