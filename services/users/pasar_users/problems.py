"""Every failure the users service tells a client about, one type each."""

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
    status = 401
    code = "invalid_grant"
    title = "Invalid credentials or refresh token"


class InvalidClient(OAuthError):
    status = 401
    code = "invalid_client"
    title = "Client authentication failed"


class TooManyAttempts(OAuthError):
    status = 429
    code = "too_many_attempts"
    title = "Too many failed login attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
