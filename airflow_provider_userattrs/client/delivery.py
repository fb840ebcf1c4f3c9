"""What a call settles: one outcome per user and attribute, from the vendor's answer or from its absence.

Vendor-neutral: the :class:`~airflow_provider_userattrs.client.vendor.VendorApi` reads the answers it
documents; this module handles what every vendor shares: redirects, bodies that are not JSON, shapes no
parser expected, a wait too long for the caller (``POSTPONED``, with the time it may go), routes and methods
the vendor does not have, and a batch refused as a whole, split until its bad records are isolated.

What is not the data's fault is never a record's rejection:

* a 404 is a configuration error (:class:`~airflow_provider_userattrs.errors.VendorEndpointError`, the whole
  sync stops at once naming the URL) unless the vendor reads it as about one record (User.com's per-user
  path) *and* the API is known to be there: an earlier call succeeded, or a probe call that changes nothing
  is answered with something else than 404 (one probe per client);
* a 405 switches a path whose method is uncertain to the other documented one, once, for the client's life
  (User.com's mass update: PUT or POST), when the answer names the method refused; otherwise it is a
  configuration error;
* 408, 429 and 5xx never reach here as answers: the sender retries them, then they end ``FAILED``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

from airflow_provider_userattrs.client.calls import Call, Outcomes
from airflow_provider_userattrs.client.pacing import LongWait
from airflow_provider_userattrs.client.sender import Sender
from airflow_provider_userattrs.client.transport import HttpResponse
from airflow_provider_userattrs.client.vendor import VendorApi, settled, snippet
from airflow_provider_userattrs.errors import (
    CallRejected,
    FatalVendorError,
    TransientVendorError,
    VendorAuthError,
    VendorEndpointError,
    VendorResponseError,
)
from airflow_provider_userattrs.results import AttributeResult, Outcome

SPLIT_CALLS_PER_LEVEL = 8
"""Budget of a rejected batch's splitting: this many calls per halving level (``ceil(log2(size))``), enough
to isolate about four bad records; what is left unisolated is reported retryable, not guessed."""


class SplitBudget:
    """The extra calls a rejected batch may still cost while it is split (shared by all its parts)."""

    def __init__(self, size: int) -> None:
        self.left = SPLIT_CALLS_PER_LEVEL * max(1, math.ceil(math.log2(max(size, 2))))
        self.total = self.left
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


class Methods:
    """The method each path with an uncertain one answers to, learned from a 405 once for the client's life."""

    def __init__(self, alternatives: Mapping[str, tuple[str, ...]]) -> None:
        self._alternatives = alternatives
        self._chosen: dict[str, str] = {}
        self._switched: set[str] = set()
        self._lock = threading.Lock()

    def apply(self, call: Call) -> Call:
        method = self._chosen.get(call.path)
        return dataclasses.replace(call, method=method) if method and method != call.method else call

    def switch(self, call: Call, response: HttpResponse) -> Call | None:
        """The call with the other method, when ``response`` (a 405) names the one sent; None when the path has
        no other method, the answer names none, or the other one was refused as well."""
        others = [m for m in self._alternatives.get(call.path, ()) if m != call.method]
        if not others:
            return None
        with self._lock:
            chosen = self._chosen.get(call.path)
            if chosen is not None and chosen != call.method:
                return dataclasses.replace(call, method=chosen)  # switched meanwhile by another thread
            if call.path in self._switched:
                return None  # both refused
            allowed = [m.strip().upper() for m in str(response.headers.get("Allow") or "").split(",") if m.strip()]
            named = [m for m in others if m in allowed] if allowed else others
            if not named or (not allowed and call.method not in response.text):
                return None
            self._switched.add(call.path)
            self._chosen[call.path] = named[0]
        return dataclasses.replace(call, method=named[0])


class _Resend(Exception):
    def __init__(self, call: Call) -> None:
        self.call = call


class Delivery:
    """Runs one call to its outcomes: send it (:class:`Sender`), read the answer (the vendor), split refusals.

    :param vendor: the vendor's rules.
    :param sender: how requests go.
    :param name: how messages name the caller's credentials (e.g. ``connection 'dx_default'``).
    :param secrets: texts never to repeat (the token): a vendor that echoes the token it refused must not
        put it in a reason or an error, which reach reports, failure files and logs.
    """

    def __init__(self, vendor: VendorApi, sender: Sender, name: str, secrets: tuple[str, ...] = ()) -> None:
        self.vendor = vendor
        self.sender = sender
        self.name = name
        self.secrets = tuple(s for s in secrets if s)
        self.methods = Methods(vendor.alternate_methods)
        self._api_answered = False
        """A call was answered 2xx: the API is where the base URL says (a 404 can then be about a record)."""
        self._probe_lock = threading.Lock()

    def run(self, call: Call) -> Outcomes:
        """Send one call and turn what happened into one outcome per entry and attribute, the vendor's
        texts cleared of the secrets.

        :raises FatalVendorError: bad credentials, or a route the vendor does not have (the whole sync stops).
        """
        try:
            outcomes = self._run(call)
        except FatalVendorError as exc:
            text = self.scrub(str(exc))
            if text == str(exc):
                raise
            raise type(exc)(text) from None
        if self.secrets:
            outcomes = [(ref, self._scrubbed(result)) for ref, result in outcomes]
        return outcomes

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _scrubbed(self, result: AttributeResult) -> AttributeResult:
        if result.reason is None or not any(secret in result.reason for secret in self.secrets):
            return result
        return dataclasses.replace(result, reason=self.scrub(result.reason))

    def _run(self, call: Call, budget: SplitBudget | None = None) -> Outcomes:
        """Send one call and turn what happened into one outcome per entry and attribute.

        :raises VendorAuthError: the vendor refused the credentials (fatal for the whole sync).
        """
        call = self.methods.apply(call)
        try:
            return self.read(call, self.sender.send(call))
        except _Resend as resend:
            return self._run(resend.call, budget)
        except LongWait as wait:
            return settled(call.entries, Outcome.POSTPONED, f"not sent yet: {wait}", not_before=wait.until)
        except CallRejected as exc:
            return self._on_rejected(call, exc, budget or SplitBudget(len(call.entries)))
        except (TransientVendorError, VendorResponseError) as exc:
            return settled(call.entries, Outcome.FAILED, str(exc))

    def read(self, call: Call, response: HttpResponse) -> Outcomes:
        """Outcomes from an answer; nothing is delivered unless the vendor's documented success says so.

        Answers the vendor does not recognise become a :class:`VendorResponseError` (reported retryable,
        with a snippet of the body) where the vendor may be down or misrouted, and a :class:`CallRejected`
        where it said no.
        """
        vendor, status = self.vendor, response.status
        body = response.json()
        vendor.check_auth(status, body, self.name)
        if 200 <= status < 300:
            self._api_answered = True
        elif status == 405:
            switched = self.methods.switch(call, response)
            if switched is not None:
                raise _Resend(switched)
            raise self._endpoint_error(call, response, "the method is not allowed there")
        elif status == 404 or status == 501:
            reason = vendor.not_found_reason(call, body) if status == 404 else None
            if reason is None or not self._api_is_there():
                raise self._endpoint_error(call, response, "no such route")
            return settled(call.entries, Outcome.REJECTED, reason)
        if 300 <= status < 400:
            location = urlsplit(str(response.headers.get("Location") or "")).hostname
            raise VendorResponseError(
                f"{vendor.label} answered HTTP {status}, a redirect"
                + (f" to {location}" if location else "")
                + "; redirects are not followed (the token must not travel elsewhere): check the connection's host"
            )
        if body is None and response.data and status < 500:
            message = f"{vendor.label} answered HTTP {status} with a body that is not JSON: " + repr(
                snippet(response.text)
            )
            if 200 <= status < 300:
                raise VendorResponseError(message)
            raise CallRejected(message)
        if status >= 500:
            detail = vendor.error_message(body) if body is not None else snippet(response.text)
            raise VendorResponseError(f"{vendor.label} answered HTTP {status}: {detail}")
        try:
            return vendor.parse(call, status, body)
        except (CallRejected, VendorAuthError, VendorEndpointError, VendorResponseError):
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise VendorResponseError(
                f"{vendor.label} answered HTTP {status} with an unexpected body "
                f"({type(exc).__name__}): {snippet(response.text)!r}"
            ) from None

    def _api_is_there(self) -> bool:
        """Whether the API answers at the base URL: a 2xx seen, or a probe that changes nothing is not a 404."""
        with self._probe_lock:
            if not self._api_answered:
                try:
                    probe = self.sender.send(self.vendor.probe_call(), attempts=1)
                except TransientVendorError:
                    return True  # nothing learned: the 404 stays the record's, as the vendor's body said
                self._api_answered = probe.status != 404
            return self._api_answered

    def _endpoint_error(self, call: Call, response: HttpResponse, what: str) -> VendorEndpointError:
        url = self.sender.base_url + call.path
        said = snippet(self.vendor.error_message(response.json()) if response.json() is not None else response.text)
        return VendorEndpointError(
            f"{self.vendor.label} answered HTTP {response.status} to {call.method} {url} ({what}: {said!r}); check "
            f"the host and path of {self.name} (expected e.g. {self.vendor.host_placeholder})"
        )

    def _on_rejected(self, call: Call, exc: CallRejected, budget: SplitBudget) -> Outcomes:
        """A refused batch: reject whom the vendor blamed, split what it did not say, within a budget.

        Splitting only helps where records differ: a refusal of what every record shares (User.com's
        attribute or value) rejects the whole call at once (the vendor's ``blame`` says so).
        """
        if call.rebuild is None or len(call.entries) == 1:
            return settled(call.entries, Outcome.REJECTED, str(exc))
        blame = self.vendor.blame(call, exc.body)
        if blame is not None:
            blamed = {entry.ref for entry in blame.entries}
            rest = [entry for entry in call.entries if entry.ref not in blamed]
            outcomes = settled(blame.entries, Outcome.REJECTED, blame.reason)
            return outcomes + (self._resend_part(call.rebuild(rest), exc, budget) if rest else [])
        middle = len(call.entries) // 2
        halves = (call.entries[:middle], call.entries[middle:])
        return [item for half in halves for item in self._resend_part(call.rebuild(half), exc, budget)]

    def _resend_part(self, part: Call, exc: CallRejected, budget: SplitBudget) -> Outcomes:
        if not budget.take():
            reason = (
                f"{self.vendor.label} refused a batch holding this user ({exc}) and the {budget.total} calls "
                "allowed to isolate the bad records ran out first; not sent, a replay sends it again"
            )
            return settled(part.entries, Outcome.FAILED, reason)
        return self._run(part, budget)
