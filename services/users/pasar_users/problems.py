"""Every failure the User-Service tells a client about, one type each."""

from __future__ import annotations

from typing import Any

from pasar_kit.problems import Problem

# Token responses must never be cached, errors included (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class EmailTaken(Problem):
    status = 409
    code = "email_taken"
    title = "Email already registered"


class WrongPassword(Problem):
    status = 403
    code = "wrong_password"
    title = "The current password is wrong"


class CurrentPasswordRequired(Problem):
    status = 422
    code = "current_password_required"
    title = "Changing the email needs the current password"

    def __init__(self, detail: str | None = None) -> None:
        # Shaped like a validation error, so a form can put the message on the field.
        super().__init__(
            detail or "current_password is required to change the email.",
            errors=[{"loc": ["body", "current_password"], "msg": "Field required"}],
        )


class TooManyRegistrations(Problem):
    status = 429
    code = "too_many_registrations"
    title = "Too many registrations from this address"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


class InvalidToken(Problem):
    """A verification or reset link that is unknown, used, voided or expired. One code and
    one message for all of them: which it was helps nobody but a guesser."""

    status = 400
    code = "invalid_token"
    title = "Invalid or expired link"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "This link has expired or was already used; ask for a new one.")


class EmailAlreadyVerified(Problem):
    status = 409
    code = "email_already_verified"
    title = "The email address is already verified"


class TooManyVerificationEmails(Problem):
    status = 429
    code = "too_many_verification_emails"
    title = "Too many verification emails"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


class TooManyPasswordResets(Problem):
    """Password-reset requests from one client address, over any emails: says nothing
    about any account."""

    status = 429
    code = "too_many_password_resets"
    title = "Too many password-reset requests from this address"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


class HashingBusy(Problem):
    """Every password-hashing slot is taken and the queue is full: shed, don't swap."""

    status = 503
    code = "hashing_busy"
    title = "Too many password checks at once"

    def __init__(self, retry_after: int = 2) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


class InvalidClientAddress(Problem):
    status = 400
    code = "invalid_client_address"
    title = "The client address is not an IP address"


class AccountInactive(Problem):
    status = 403
    code = "account_inactive"
    title = "The account is deactivated"


class UserNotFound(Problem):
    status = 404
    code = "user_not_found"
    title = "No such user"


class NotificationNotFound(Problem):
    status = 404
    code = "notification_not_found"
    title = "No such notification"


class DeliveryNotFound(Problem):
    status = 404
    code = "delivery_not_found"
    title = "No such delivery"


class UnknownUser(Problem):
    status = 422
    code = "unknown_user"
    title = "The notification names a user that does not exist"


class LastAdmin(Problem):
    status = 409
    code = "last_admin"
    title = "The last active admin cannot be demoted or deactivated"


class SigningKeyUnavailable(Problem):
    status = 503
    code = "signing_key_unavailable"
    title = "No signing key is loaded yet"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": "2"}, **extra)


class OAuthError(Problem):
    """A token-endpoint error: ``code`` is the RFC 6749 error, repeated as ``error``."""

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(
            detail,
            headers={**NO_STORE, **extra.pop("headers", {})},
            error=self.code,
            error_description=detail or self.title,
            **extra,
        )


class InvalidRequest(OAuthError):
    status = 400
    code = "invalid_request"
    title = "The token request is missing a parameter or is malformed"


class UnsupportedGrantType(OAuthError):
    status = 400
    code = "unsupported_grant_type"
    title = "Unsupported grant type"


class InvalidScope(OAuthError):
    status = 400
    code = "invalid_scope"
    title = "A requested scope is not allowed for this client"


class InvalidGrant(OAuthError):
    # RFC 6749 section 5.2: bad user credentials are 400, not 401 (the *client* is fine).
    status = 400
    code = "invalid_grant"
    title = "Invalid credentials or refresh token"


class InvalidClient(OAuthError):
    status = 401
    code = "invalid_client"
    title = "Client authentication failed"

    def __init__(self, detail: str | None = None) -> None:
        # A 401 must name a scheme the client may use (RFC 9110 section 11.6.1); for a
        # client that sent Basic credentials RFC 6749 section 5.2 requires exactly this.
        super().__init__(detail, headers={"WWW-Authenticate": 'Basic realm="pasar"'})


class TooManyAttempts(OAuthError):
    """Too many wrong passwords (a login, or the current password on /users/me)."""

    status = 429
    code = "too_many_attempts"
    title = "Too many failed attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
