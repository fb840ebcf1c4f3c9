"""Connection settings: every tuning extra, its default, its check and its words, defined once.

:class:`HookSettings` is the only place a default is written. The connection form (``get_provider_info``)
is generated from its fields, README's table is checked against them by a test, and
:func:`parse_settings` is the one parser of extras and ``hook_params``: a value that can never work
raises :class:`~airflow_provider_userattrs.errors.ConnectionConfigError` naming the connection, the field
and what to put there, before any row is read or request sent, so that a task fails once instead of
burning its retries on the same mistake.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_userattrs.errors import ConnectionConfigError

log = logging.getLogger(__name__)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

ATTRIBUTE_TYPE_NAMES = ("string", "number", "integer", "boolean", "date", "datetime", "list")
"""Types a user may declare per attribute in the ``attribute_types`` extra."""


def truthy(value: Any) -> bool:
    """A boolean from an extra or a rendered template, which may arrive as text ("false", "0", "yes")."""
    return str(value).strip().lower() in TRUE_WORDS


def _setting(
    default: Any,
    doc: str,
    *,
    label: str,
    minimum: float | None = None,
    maximum: float | None = None,
    vendors: tuple[str, ...] | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    metadata = {"doc": doc, "label": label, "minimum": minimum, "maximum": maximum, "vendors": vendors}
    metadata["choices"] = choices
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class HookSettings:
    """Tuning read from the connection's extras; each can be overridden per task with ``hook_params``."""

    concurrency: int = _setting(32, "Requests in flight at once.", label="Concurrency", minimum=1, maximum=256)
    requests_per_second: float | None = _setting(
        None,
        "Client-side pace cap; empty = none (429s and rate-limit headers still slow the client).",
        label="Requests per second",
        minimum=0.001,
    )
    connect_timeout: float = _setting(5.0, "Seconds to open a connection.", label="Connect timeout (s)", minimum=0.001)
    read_timeout: float = _setting(30.0, "Seconds to wait for an answer.", label="Read timeout (s)", minimum=0.001)
    max_attempts: int = _setting(
        6,
        "Attempts per request on 429/502/503/504 and connection errors.",
        label="Max attempts",
        minimum=1,
        maximum=20,
    )
    backoff_base: float = _setting(
        0.5, "First retry waits up to this many seconds (doubling, full jitter).", label="Backoff base (s)", minimum=0
    )
    backoff_max: float = _setting(30.0, "Longest backoff between attempts.", label="Backoff max (s)", minimum=0)
    max_retry_wait: float = _setting(
        300.0,
        "A vendor asking for a longer wait makes the request fail as retryable instead of waiting.",
        label="Max retry wait (s)",
        minimum=0,
    )
    batch_size: int = _setting(
        100,
        "Users per batch call (Fyno publishes no maximum).",
        label="Batch size",
        minimum=1,
        vendors=("fyno",),
    )
    mass_update_chunk_size: int = _setting(
        1000,
        "Ids per mass-update call (User.com publishes no maximum).",
        label="Mass-update chunk size",
        minimum=1,
        vendors=("usercom",),
    )
    quota_requests: int | None = _setting(
        None,
        "The account's quota: requests allowed per quota_window_seconds, shared by every task using the "
        "connection. Not set: the vendor's published quota, on its own API (DX: 1000 per 60, which DX's form "
        "shows), else none; emptied or 0: not declared, e.g. an account with another plan (429s and rate-limit "
        "headers still pace the client).",
        label="Quota: requests",
        minimum=0,
    )
    quota_window_seconds: float | None = _setting(
        None, "The quota's window in seconds (e.g. 60 for DX's 1,000 a minute).", label="Quota: window (s)", minimum=1
    )
    quota_store: str | None = _setting(
        None,
        "Where every task using the connection takes its turn from one account-wide pace for a declared quota: a "
        "Redis URL (redis://host:6379/0; needs the redis extra). Empty: the Celery broker's Redis where Airflow "
        "runs Celery on Redis, else none; none: no store.",
        label="Quota store (Redis URL)",
    )
    defer_after: float = _setting(
        60.0,
        "In a task, a wait for the vendor's quota longer than this defers the task to the triggerer (its worker "
        "slot is freed) and resumes it where it stopped; outside a task the hook sleeps.",
        label="Defer after (s)",
        minimum=1,
    )
    verify_ssl: bool = _setting(True, "Leave on; turning it off logs a warning.", label="Verify TLS certificates")
    allow_insecure_http: bool = _setting(
        False,
        "Allow plain http:// to a host that is not loopback (the token would travel in clear).",
        label="Allow insecure HTTP",
    )
    attribute_types: Mapping[str, str] = _setting(
        {},
        'Declared types checked before sending, e.g. {"ltv": "number", "member_since": "date"}.',
        label="Attribute types (JSON)",
    )
    workspace_id: str | None = _setting(
        None, "WSID from the API Keys page of your Fyno account.", label="Workspace ID", vendors=("fyno",)
    )
    version: str = _setting(
        "live", "Fyno environment: live or test.", label="Version", vendors=("fyno",), choices=("live", "test")
    )


SETTING_FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(HookSettings)
_TYPES: dict[str, Any] = typing.get_type_hints(HookSettings)
KNOWN_EXTRAS = frozenset(f.name for f in SETTING_FIELDS)
BLANK_IS_ZERO = frozenset({"quota_requests"})
"""Settings whose emptied field means 0 (turned off) rather than the default: the form shows DX's published quota,
and a user on another plan empties it to declare none."""


def _kind(name: str) -> type:
    """The plain type of a setting: ``float | None`` -> float, ``Mapping[str, str]`` -> dict."""
    hint = _TYPES[name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return dict if typing.get_origin(hint) is not None else hint


def _words(kind: type, spec: dataclasses.Field[Any]) -> str:
    meta = spec.metadata
    text = {int: "a whole number", float: "a number", bool: "true or false", str: "text", dict: "a JSON object"}[kind]
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    if meta.get("minimum") is not None and meta.get("maximum") is not None:
        return f"{text} from {meta['minimum']:g} to {meta['maximum']:g}"
    if meta.get("minimum") is not None:
        return f"{text} of at least {meta['minimum']:g}" if meta["minimum"] else f"{text}, 0 or more"
    return text


class _Invalid(ValueError):
    pass


def _coerce(kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise _Invalid
    if kind is int:
        if isinstance(raw, bool):
            raise _Invalid
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str) and raw.strip().lstrip("+").isdigit():
            return int(raw.strip())
        raise _Invalid
    if kind is float:
        if isinstance(raw, bool):
            raise _Invalid
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise _Invalid from None
        if value != value or value in (float("inf"), float("-inf")):
            raise _Invalid
        return value
    if kind is dict:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise _Invalid from None
        if not isinstance(raw, Mapping):
            raise _Invalid
        return dict(raw)
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise _Invalid
    return str(raw).strip()


def _check(spec: dataclasses.Field[Any], value: Any) -> None:
    meta = spec.metadata
    if isinstance(value, int | float) and not isinstance(value, bool):
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise _Invalid
        if meta.get("maximum") is not None and value > meta["maximum"]:
            raise _Invalid
    if meta.get("choices") and value not in meta["choices"]:
        raise _Invalid
    if spec.name == "attribute_types":
        for attribute, type_name in value.items():
            if type_name not in ATTRIBUTE_TYPE_NAMES:
                raise _Invalid(f"attribute {attribute!r} has the unknown type {type_name!r}")


def _shown(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_settings(
    extra: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    where: str,
    overrides_name: str = "hook_params",
) -> HookSettings:
    """Every setting from ``extra`` (the connection) and ``overrides`` (``hook_params``), checked.

    ``None`` or an empty string means the default, whichever side it comes from. An unknown extra is
    logged (other tools may keep their own keys in a connection); an unknown ``hook_params`` key is an
    error, since nothing else reads those.
    """
    overrides = dict(overrides or {})
    unknown_params = sorted(set(overrides) - KNOWN_EXTRAS)
    if unknown_params:
        raise ConnectionConfigError(
            f"{where}: {overrides_name} has unknown setting(s) {', '.join(map(repr, unknown_params))}; "
            f"known settings: {', '.join(sorted(KNOWN_EXTRAS))}"
        )
    unknown_extras = sorted(str(k) for k in set(extra) - KNOWN_EXTRAS)
    if unknown_extras:
        log.warning("%s: ignoring unknown extra(s) %s", where, ", ".join(map(repr, unknown_extras)))
    values: dict[str, Any] = {}
    for spec in SETTING_FIELDS:
        origin, raw = (
            (overrides_name, overrides[spec.name])
            if overrides.get(spec.name) is not None
            else (
                "extra",
                extra.get(spec.name),
            )
        )
        if spec.name in BLANK_IS_ZERO and isinstance(raw, str) and not raw.strip():
            values[spec.name] = 0  # a field the user emptied (the form shows the default): turned off
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue  # the default
        kind = _kind(spec.name)
        try:
            value = _coerce(kind, raw)
            _check(spec, value)
        except _Invalid as exc:
            detail = f" ({exc})" if str(exc) else ""
            default = spec.default if spec.default is not dataclasses.MISSING else "{}"
            raise ConnectionConfigError(
                f"{where}: {origin} {spec.name!r} must be {_words(kind, spec)}, got {_shown(raw)}{detail}; "
                f"fix it or remove it to use the default ({default})"
            ) from None
        values[spec.name] = value
    requests = values.get("quota_requests")
    if requests != 0 and (requests is not None) != ("quota_window_seconds" in values):  # 0: not declared
        raise ConnectionConfigError(
            f"{where}: a quota needs both quota_requests and quota_window_seconds (e.g. 1000 and 60 for "
            "1,000 requests a minute); set both, or neither (0 requests: no quota)"
        )
    return HookSettings(**values)


def form_fields(vendor: str, defaults: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The connection form's extra fields for ``vendor`` (Airflow's ``conn-fields``), from the settings.

    :param defaults: values the form shows for this vendor where the settings have none (DX's published quota).
    """
    defaults = defaults or {}
    json_types = {int: "integer", float: "number", bool: "boolean", str: "string", dict: "string"}
    fields: dict[str, dict[str, Any]] = {}
    for spec in SETTING_FIELDS:
        meta = spec.metadata
        if meta.get("vendors") and vendor not in meta["vendors"]:
            continue
        kind = _kind(spec.name)
        schema: dict[str, Any] = {"type": [json_types[kind], "null"]}
        for key in ("minimum", "maximum"):
            if meta.get(key) is not None:
                schema[key] = meta[key]
        if meta.get("choices"):
            schema["enum"] = list(meta["choices"])
        default = spec.default if spec.default is not dataclasses.MISSING else None
        default = defaults.get(spec.name, default)
        if default is not None:
            schema["default"] = default
        description = meta["doc"] + (f" Default: {default}." if default not in (None, "") else "")
        fields[spec.name] = {"label": meta["label"], "description": description, "schema": schema}
    return fields


def settings_markdown() -> str:
    """README's table of connection extras, generated from :class:`HookSettings` (a test keeps them equal).

    Print it with ``python -c "from airflow_provider_userattrs.config import settings_markdown as s; print(s())"``.
    """
    rows = ["| extra | default | vendors | what it does |", "|---|---|---|---|"]
    for spec in SETTING_FIELDS:
        default = spec.default if spec.default is not dataclasses.MISSING else {}
        shown = "" if default is None else json.dumps(default) if isinstance(default, dict | bool) else str(default)
        vendors = ", ".join(spec.metadata["vendors"]) if spec.metadata.get("vendors") else "all"
        rows.append(f"| `{spec.name}` | {shown} | {vendors} | {spec.metadata['doc']} |")
    return "\n".join(rows)
