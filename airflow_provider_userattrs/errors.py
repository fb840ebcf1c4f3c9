"""Exceptions of the hooks.

The axis that decides retries is named plainly. Only a :class:`FatalVendorError` escapes a sync: bad
credentials (:class:`VendorAuthError`) or a route the vendor does not have (:class:`VendorEndpointError`)
fail every user the same way, so retrying or reporting each user would only hide the one thing a person
must fix. Everything else is turned into a per-user outcome by the client: :class:`TransientVendorError`
and :class:`VendorResponseError` end ``FAILED`` (retryable), :class:`CallRejected` ``REJECTED`` (never
retried).
"""

from __future__ import annotations


class UserAttrsError(Exception):
    """Base class of this provider's errors."""


class FatalVendorError(UserAttrsError):
    """Stops a whole sync at once, never retried: every record would fail the same way, whatever it holds."""


class VendorAuthError(FatalVendorError):
    """The vendor refused the credentials (401/403, DX ``not_authed``/``invalid_auth``, Fyno "Invalid API
    details"). Fatal for the whole sync, never retried."""


class ConnectionConfigError(UserAttrsError):
    """The Airflow connection cannot be used as it is (missing token, bad URL, unsafe scheme)."""


class VendorEndpointError(FatalVendorError, ConnectionConfigError):
    """The vendor has no such route or method (404 from an endpoint that is not about one record, 405): the
    connection's host or path is wrong. The message names the connection and the URL (never the token)."""


class SourceConfigError(UserAttrsError):
    """The sync's source cannot work as given (a query without the user id column, an incremental state in a
    warehouse whose SQL this provider does not know): retrying would fail the same way."""


class TransientVendorError(UserAttrsError):
    """A failure worth retrying: 429, 502/503/504, a connection error or timeout.

    ``retry_after`` is the vendor's own wait (seconds), when it said one; ``final`` means "do not retry
    now" (the vendor asked for a longer wait than the hook may sleep), yet the failure stays retryable later.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, final: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.final = final


class CallRejected(UserAttrsError):
    """The vendor rejected a whole call permanently (4xx). A batch is split to isolate the bad records."""

    def __init__(self, message: str, *, body: object = None) -> None:
        super().__init__(message)
        self.body = body
        """The vendor's parsed answer, from which a vendor may tell which records were at fault."""


class VendorResponseError(UserAttrsError):
    """The vendor answered something this client cannot read (HTML, truncated JSON, wrong shapes).

    Reported as a transient failure: nobody knows whether the change was applied, and sets are idempotent,
    so sending again later is the safe choice.
    """
