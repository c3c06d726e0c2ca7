"""What the shopper reads when a service says no: one sentence per problem ``code``.

The services' own ``detail`` texts are English and written for developers; pages show
these instead, in the shopper's language.
"""

from __future__ import annotations

from pasar_web.api import ApiProblem
from pasar_web.i18n import gettext as _
from pasar_web.i18n import lazy

IMAGE_TOO_LARGE = lazy("The picture file is too large. Upload a smaller file.")

_MESSAGES: dict[str, str] = {
    "email_taken": lazy("An account with this email already exists. Log in instead?"),
    "invalid_grant": lazy("The email or password is not right."),
    "invalid_request": lazy("Please fill in your email and password."),
    "account_inactive": lazy("This account has been deactivated. Contact the shop for help."),
    "user_inactive": lazy("This account cannot place orders. Contact the shop for help."),
    "wrong_password": lazy("Your current password is not right."),
    "last_admin": lazy(
        "This is the shop's last active admin: make another admin first, then try again."
    ),
    "sku_taken": lazy("Another product already has this SKU."),
    "insufficient_stock": lazy("There is not that much stock to write off."),
    "out_of_stock": lazy("Some products are no longer in stock in that quantity."),
    "unknown_product": lazy("A product in your cart is no longer sold."),
    "quantity_too_large": lazy("That is more than can be ordered of one product at once."),
    "invalid_transition": lazy(
        "The order has moved on meanwhile; this change is no longer allowed."
    ),
    "payment_declined": lazy("The card was declined. Try another card."),
    "payments_disabled": lazy("This shop does not take card payments."),
    "payment_window_closed": lazy("The time to pay for this order has run out."),
    "order_not_found": lazy("We could not find that order."),
    "product_not_found": lazy("We could not find that product."),
    "not_order_owner": lazy("Only the customer who placed the order can pay for it."),
    "precondition_failed": lazy("Someone else changed this product meanwhile."),
    "too_many_attempts": lazy("Too many failed attempts. Please wait a few minutes and try again."),
    "too_many_requests": lazy("Too many attempts. Please wait a moment and try again."),
    "too_many_registrations": lazy(
        "Too many accounts were created from your connection. Please try again later."
    ),
    "current_password_required": lazy("Enter your current password to change your email."),
    "invalid_characters": lazy("The form contains characters that cannot be saved."),
    "forbidden": lazy("You are not allowed to do that."),
    "too_many_unpaid_orders": lazy(
        "You already have orders waiting for payment. Pay or cancel one of them first."
    ),
    "order_total_too_large": lazy("This order is too large. Please order fewer items."),
    "payment_in_progress": lazy(
        "A payment for this order is still being processed. Check the order in a moment."
    ),
    "hashing_busy": lazy("We are very busy right now. Please try again in a few seconds."),
    "image_too_large": IMAGE_TOO_LARGE,
    "image_too_many_pixels": lazy(
        "The picture has too many pixels. Upload one with a smaller width and height."
    ),
    "unsupported_image": lazy(
        "This file is not a picture we can use. Upload a JPEG, PNG or WebP image."
    ),
    "too_many_images": lazy("This product has as many pictures as allowed. Delete one first."),
    "image_not_found": lazy("That picture is no longer there."),
    "invalid_token": lazy(
        "This link has expired or was already used. Ask for a new one and use the newest link."
    ),
    "email_not_verified": lazy(
        "Please verify your email address before ordering: open the link we mailed you, or "
        "ask for a new one on your account page."
    ),
    "email_already_verified": lazy("Your email address is already verified."),
    "too_many_verification_emails": lazy(
        "We just sent you a link. Please wait a little before asking for another one."
    ),
    "idempotency_key_reused": lazy(
        "Your order changed since you opened checkout. Please check it and confirm again."
    ),
}


def friendly(problem: ApiProblem) -> str:
    """A sentence for the shopper; never the service's raw text or a JSON dump."""
    message = _MESSAGES.get(problem.code)
    if message is not None:
        return _(message)
    if problem.status == 422:
        return _("Some of the values are not valid. Please check the form.")
    if problem.status == 404:
        return _("We could not find what you were looking for.")
    if problem.status == 403:
        return _("You are not allowed to do that.")
    return _("That did not work. Please try again.")
