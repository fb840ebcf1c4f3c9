"""What every vendor hook shares: turning an Airflow connection into a vendor client.

The hooks hold no delivery logic: validation, planning, pacing, retries and the reading of answers are the
client's (:mod:`airflow_provider_userattrs.client`, which needs no Airflow). A hook reads the connection
(host, token, extras), masks the token in task logs, and builds a :class:`~airflow_provider_userattrs.client.Client`;
its operations are the client's, for DAG authors who call a hook directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from airflow_provider_userattrs.client import Client, ClientStats, build, declared_quota
from airflow_provider_userattrs.client.clock import Clock
from airflow_provider_userattrs.client.pacing import Quota
from airflow_provider_userattrs.client.transport import Transport
from airflow_provider_userattrs.client.urls import compose
from airflow_provider_userattrs.client.validation import Validator
from airflow_provider_userattrs.client.vendor import VendorApi
from airflow_provider_userattrs.compat import BaseHook, airflow_conf, mask_secret
from airflow_provider_userattrs.config import HookSettings, parse_settings
from airflow_provider_userattrs.errors import ConnectionConfigError
from airflow_provider_userattrs.results import AttributeResult, UserId, UserResult, UserUpdate


class UserAttributesHook(BaseHook):
    """Base of the four vendor hooks: a connection of the vendor's type, turned into a client.

    A vendor hook names its :attr:`api` (the vendor object of ``client/vendors/``); Airflow's ``conn_type``,
    ``hook_name`` and ``default_conn_name`` are derived from it.

    :param conn_id: the Airflow connection (its type must match the hook's vendor).
    :param clock: time as the pacing sees it (tests pass a fake one).
    :param transport: the HTTP transport (tests pass a fake one); default a pooled urllib3 transport.
    :param settings: overrides of the connection's tuning extras (see :class:`HookSettings`).
    """

    conn_name_attr = "conn_id"
    api: ClassVar[VendorApi]
    vendor: ClassVar[str] = ""
    """The connection type, and the vendor's key in reports and the sandbox."""
    vendor_label: ClassVar[str] = ""
    """The vendor's name as a person reads it."""
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""
    default_conn_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "api", None) is not None:
            cls.vendor = cls.conn_type = cls.api.name
            cls.vendor_label = cls.hook_name = cls.api.label
            cls.default_conn_name = f"{cls.api.name}_default"
            # Airflow 3.0 and 3.1 take the form only from methods in the hook class's own __dict__ (hooks/forms.py).
            cls.get_connection_form_widgets = UserAttributesHook.__dict__["get_connection_form_widgets"]  # type: ignore[method-assign]
            cls.get_ui_field_behaviour = UserAttributesHook.__dict__["get_ui_field_behaviour"]  # type: ignore[method-assign]

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._setting_overrides = settings
        self._clock = clock
        self._transport = transport
        self._config: tuple[str | None, HookSettings, str] | None = None
        self._client: Client | None = None
        self._closed = ClientStats()
        """What the clients this hook closed cost: ``stats()`` counts them too."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    # -- the connection ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """How messages name these credentials."""
        return f"connection {self.conn_id!r}"

    def _load(self) -> tuple[str | None, HookSettings, str]:
        """Base URL, settings and token from the Airflow connection, read once; the token masked in logs."""
        if self._config is None:
            conn = self.get_connection(self.conn_id)
            where = f"{self.vendor_label} {self.name}"
            token = conn.password
            if not token:
                raise ConnectionConfigError(f"{where} has no API token: put it in the password field")
            mask_secret(token)
            settings = parse_settings(conn.extra_dejson or {}, self._setting_overrides, where=where)
            self._config = (compose(conn.host, conn.port, conn.schema), settings, token)
        return self._config

    @property
    def settings(self) -> HookSettings:
        return self._load()[1]

    @property
    def quota(self) -> Quota | None:
        """The quota this connection's clients pace to: the one it declares, else the vendor's published one on
        the vendor's own API (DX's 1,000 a minute); None when there is none (``quota_requests`` 0)."""
        base_url, settings, _ = self._load()
        return declared_quota(self.api, settings, base_url or self.api.default_host)

    def get_client(self, *, defer_long_waits: bool = False) -> Client:
        """A new client for this connection.

        :param defer_long_waits: a wait for the vendor's quota longer than ``defer_after`` is not slept: the
            users held back come back ``POSTPONED`` with the time they may go (what an operator's task
            defers on).
        :raises ConnectionConfigError: the connection can never work (naming the field and what to put there).
        """
        base_url, settings, token = self._load()
        return build(
            self.api,
            base_url,
            token,
            settings,
            name=self.name,
            defer_long_waits=defer_long_waits,
            clock=self._clock,
            transport=self._transport,
            default_quota_store=celery_redis_url(),
        )

    def get_conn(self) -> Client:
        """The hook's client (built on first use, never at DAG parse time); waits are slept."""
        if self._client is None:
            self._client = self.get_client()
        return self._client

    def check_config(self) -> HookSettings:
        """Read and check the connection now, sending nothing.

        Raises :class:`ConnectionConfigError` naming the connection, the field and what to put there: a
        connection that can never work must fail a task at once, before any row is read.
        """
        self.get_conn()
        return self.settings

    def close(self) -> None:
        if self._client is not None:
            self._closed += self._client.stats()
            self._client.close()
            self._client = None

    def __enter__(self) -> UserAttributesHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the client's operations, for DAG authors who call a hook ------------------------------------------

    @property
    def validator(self) -> Validator:
        return self.get_conn().validator

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """What of ``update`` can be sent, and why the rest cannot. No I/O."""
        return self.get_conn().validate(update)

    def update_user(self, user_id: UserId, attributes: Mapping[str, Any]) -> UserResult:
        """Set many attributes of one user (:meth:`Client.update_user`)."""
        return self.get_conn().update_user(user_id, attributes)

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]:
        """Set attributes of many users, concurrently and streaming (:meth:`Client.update_users`)."""
        return self.get_conn().update_users(updates)

    def mass_update(self, attribute: str, value: Any, user_ids: Iterable[UserId]) -> Iterator[UserResult]:
        """Set one attribute to one value for many users (:meth:`Client.mass_update`)."""
        return self.get_conn().mass_update(attribute, value, user_ids)

    def test_connection(self) -> tuple[bool, str]:
        """Check URL and credentials with a request that changes no data (the UI's Test button)."""
        try:
            client = self.get_conn()
        except ConnectionConfigError as exc:
            return False, f"{self.vendor_label}: {exc}"
        return client.test_connection()

    def stats(self) -> ClientStats:
        """Requests sent, 429s drawn and seconds waited by the hook's clients so far (closed ones included)."""
        return self._closed + self._client.stats() if self._client is not None else self._closed

    @property
    def requests_sent(self) -> int:
        """HTTP requests made by this hook so far, retries included."""
        return self.stats().requests_sent

    @property
    def throttled_requests(self) -> int:
        """Answers that were 429 so far."""
        return self.stats().throttled_requests

    @property
    def waited_seconds(self) -> float:
        """Seconds requests spent waiting for their turn or for a retry so far (summed over threads)."""
        return self.stats().waited_seconds

    # -- the connection form ------------------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's vendor fields for Airflow 3.0 and 3.1 (3.2+ read the provider metadata's ``conn-fields``
        instead, and do not call this); built from the same metadata (``hooks/forms.py``)."""
        from airflow_provider_userattrs.hooks.forms import form_widgets

        return form_widgets(cls.conn_type)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden fields, labels and placeholders for Airflow 3.0 and 3.1: the metadata's ``ui-field-behaviour``."""
        from airflow_provider_userattrs.hooks.forms import field_behaviour

        return field_behaviour(cls.conn_type)

    @classmethod
    def host_placeholder(cls) -> str:
        return cls.api.host_placeholder


def celery_redis_url() -> str | None:
    """The Redis this deployment already runs for Celery (``[celery] broker_url`` with a Celery executor), or
    None: the store a declared quota is paced through when the connection names none (``quota_store``)."""
    try:
        if "celery" not in str(airflow_conf.get("core", "executor", fallback="")).lower():
            return None  # Local, Kubernetes...: the celery provider's default broker URL is no running Redis
        url = airflow_conf.get("celery", "broker_url", fallback=None)
    except Exception:  # no [celery] section, an unreadable setting: no default store
        return None
    return url if isinstance(url, str) and url.split("://", 1)[0] in ("redis", "rediss") else None


__all__ = ["UserAttributesHook", "celery_redis_url"]
