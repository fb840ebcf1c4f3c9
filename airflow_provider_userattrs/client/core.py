"""The vendor client: validate, plan, send concurrently, one :class:`UserResult` per update.

A :class:`Client` is built by :func:`airflow_provider_userattrs.client.connect` and knows nothing of Airflow.
It wires the parts, each the single owner of its rule:

* the vendor's :class:`~.validation.Validator` (what may be sent) and its planner (which calls carry it);
* :class:`~.scheduler.CallScheduler` (which call may go: concurrency, per-user order);
* :class:`~.sender.Sender` (when it goes, what is retried, how long to wait, when a wait is too long);
* :class:`~.delivery.Delivery` (what the answer settles, how a refused batch is split).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_provider_userattrs.client.calls import Entry
from airflow_provider_userattrs.client.delivery import Delivery
from airflow_provider_userattrs.client.scheduler import CallScheduler, Window
from airflow_provider_userattrs.client.sender import ClientStats, Sender
from airflow_provider_userattrs.client.validation import Validator
from airflow_provider_userattrs.client.vendor import VendorApi
from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import ConnectionConfigError, TransientVendorError, VendorAuthError
from airflow_provider_userattrs.results import AttributeResult, UserId, UserResult, UserUpdate

RESULTS_PER_WINDOW_FACTOR = 4
"""A window also closes once it holds this many times its size in results: users refused by the validator
take no call but still occupy the window, and a segment of mostly invalid rows must not pile them up."""


class Client:
    """Sets user attributes at one vendor account. Thread-safe; use one per account and process.

    :param vendor: the vendor's rules (``client/vendors/``).
    :param sender: how requests go (its transport, pace and retries).
    :param settings: the checked settings.
    :param name: how messages name the credentials (e.g. ``connection 'dx_default'``).
    :param secrets: texts no reason or error may repeat (the token, which a vendor may echo).
    """

    def __init__(
        self, vendor: VendorApi, sender: Sender, settings: HookSettings, *, name: str, secrets: tuple[str, ...] = ()
    ) -> None:
        self.vendor = vendor
        self.sender = sender
        self.settings = settings
        self.name = name
        self.validator = Validator(vendor.rules, settings.attribute_types)
        self._delivery = Delivery(vendor, sender, name, secrets)

    def __repr__(self) -> str:
        return f"Client(vendor={self.vendor.name!r}, base_url={self.sender.base_url!r})"

    @property
    def vendor_name(self) -> str:
        return self.vendor.name

    def stats(self) -> ClientStats:
        """Requests sent, 429s drawn and seconds waited so far."""
        return self.sender.stats()

    # -- operations ------------------------------------------------------------------------------------

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """What of ``update`` can be sent, and why the rest cannot. No I/O."""
        return self.validator.validate(update)

    def update_user(self, user_id: UserId, attributes: Mapping[str, Any]) -> UserResult:
        """Set many attributes of one user."""
        return next(iter(self.update_users([UserUpdate(user_id, attributes)])))

    def update_users(self, updates: Iterable[UserUpdate | tuple[UserId, Mapping[str, Any]]]) -> Iterator[UserResult]:
        """Set attributes of many users, concurrently, streaming ``updates`` with bounded memory.

        :param updates: the users and their attributes; a ``(user_id, attributes)`` tuple works too.
        :return: exactly one :class:`UserResult` per input update, in completion order, with ``ref`` handed
            back. A later update of a user waits until an earlier one of the same user has been answered,
            so the last record wins. Attributes the vendor's quota held back (a client built with
            ``defer_long_waits``) come back ``POSTPONED`` with the time they may go (``not_before``).
        :raises VendorAuthError: as soon as the vendor refuses the credentials.
        """
        scheduler = CallScheduler(self._delivery.run, self.settings.concurrency, self.vendor.name)
        yield from scheduler.run(self._planned(updates))

    def mass_update(self, attribute: str, value: Any, user_ids: Iterable[UserId]) -> Iterator[UserResult]:
        """Set one attribute to one value for many users (one :class:`UserResult` per input id).

        Vendors with a bulk endpoint get one call per chunk of ids; the others are fanned out per user.
        """
        return self.update_users(UserUpdate(user_id, {attribute: value}) for user_id in user_ids)

    def test_connection(self) -> tuple[bool, str]:
        """Check URL and credentials with a request that changes no data (the UI's Test button)."""
        label = self.vendor.label
        try:
            response = self.sender.send(self.vendor.probe_call(), attempts=1)
            self.vendor.check_auth(response.status, response.json(), self.name)
        except VendorAuthError as exc:
            return False, self._delivery.scrub(str(exc))
        except (TransientVendorError, ConnectionConfigError) as exc:
            return False, self._delivery.scrub(f"{label}: {exc}")
        except Exception as exc:  # the Test button must answer, whatever happened
            return False, self._delivery.scrub(f"{label}: {type(exc).__name__}: {exc}")
        if response.status >= 500:
            return False, f"{label} answered HTTP {response.status}"
        return True, f"Connected to {label}: the API answered and accepted the credentials"

    def close(self) -> None:
        self.sender.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- planning ------------------------------------------------------------------------------------

    def _window_size(self) -> int:
        setting = self.vendor.window_setting
        return int(getattr(self.settings, setting)) if setting else 1

    def _windows(
        self, updates: Iterable[UserUpdate | tuple[UserId, Mapping[str, Any]]]
    ) -> Iterator[tuple[list[UserResult], list[Entry]]]:
        """Validate updates and group them into planning windows.

        A window closes early when a user repeats, so that one call never carries two versions of a user.
        """
        size = self._window_size()
        results: list[UserResult] = []
        entries: list[Entry] = []
        users: set[UserId] = set()
        for update in updates:
            if not isinstance(update, UserUpdate):
                update = UserUpdate(*update)
            sendable, problems = self.validate(update)
            if sendable is not None and sendable.user_id in users:
                yield results, entries
                results, entries, users = [], [], set()
            result = UserResult(sendable.user_id if sendable else update.user_id, list(problems), update.ref)
            if sendable is not None:
                entries.append(Entry(len(results), sendable.user_id, sendable.attributes))
                users.add(sendable.user_id)
            results.append(result)
            if len(entries) >= size or len(results) >= size * RESULTS_PER_WINDOW_FACTOR:
                yield results, entries
                results, entries, users = [], [], set()
        if results:
            yield results, entries

    def _planned(self, updates: Iterable[UserUpdate | tuple[UserId, Mapping[str, Any]]]) -> Iterator[Window]:
        for results, entries in self._windows(updates):
            calls = self.vendor.plan(entries, self.settings) if entries else []
            yield Window(results, frozenset(e.user_id for e in entries), calls)
