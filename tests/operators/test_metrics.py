"""The sync's metrics reach the deployment's StatsD: a real ``dag.test()`` in a process started with StatsD on (as a
worker starts with the deployment's ``[metrics]``), against the sandbox, and a UDP listener on localhost that
receives what Airflow's ``Stats`` sends."""

from __future__ import annotations

import select
import socket
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from airflow_provider_userattrs.metrics import COUNTERS, Counts, name_part, try_metrics
from tests.conftest import REPO_ROOT
from tests.operators.test_operators import USER_ID_FIELD, records_literal
from tests.worker_process import run_dag_in_process, write_dag

pytestmark = pytest.mark.integration

pytest.importorskip("statsd", reason="Airflow's StatsD client (apache-airflow[statsd]) is not installed")


class StatsdListener:
    """A UDP socket on 127.0.0.1 that keeps every StatsD line it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []

    def poll(self, done, timeout: float = 10.0) -> None:
        """Read what arrived until ``done(self)`` holds, or ``timeout`` seconds passed (then the test fails on
        what is missing)."""
        deadline = time.monotonic() + timeout
        while not done(self):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                self.lines.extend(self.sock.recv(65535).decode().splitlines())

    def values(self, name: str, kind: str = "c") -> list[float]:
        """The values sent under exactly ``name`` (``kind``: ``c`` counter, ``ms`` timer)."""
        found = []
        for line in self.lines:
            stat, _, rest = line.partition(":")
            value, _, sent_kind = rest.partition("|")
            if stat == name and sent_kind.split("|")[0] == kind:
                found.append(float(value))
        return found

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    yield listener
    listener.close()


def run_in_worker_process(dag_harness, statsd: StatsdListener, dag_id: str, body: str, **metrics_env: str):
    """Write the DAG and ``dag.test()`` it in a new process whose ``[metrics]`` sends to ``statsd``."""
    env = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
        **{f"AIRFLOW__METRICS__{key.upper()}": value for key, value in metrics_env.items()},
    }
    result, _ = run_dag_in_process(write_dag(dag_harness.folder, dag_id, body), dag_id, env)
    return result


def test_each_try_adds_only_what_it_did_and_names_carry_vendor_and_connection(dag_harness, sandbox, statsd):
    # Two 503s exhaust the single HTTP attempt of two users: try 1 leaves them for try 2, which resends only them.
    # Each try's report counts the whole task so far; the counters must add 28 then 2, not 28 then 30.
    sandbox.script([{"status": 503}, {"status": 503}])
    result = run_in_worker_process(
        dag_harness,
        statsd,
        "metrics_retry",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="dx_default", user_id_field="email", retries=2, retry_delay=timedelta(0),
            records=[{"email": f"r{i}@example.com", "n": str(i)} for i in range(30)],
            checkpoint_every=7, hook_params={"max_attempts": 1, "concurrency": 4},
        )
        """,
    )
    assert result.state == "success" and result.tasks[("push", -1)][1] == 2
    named = ".dx.dx_default"
    statsd.poll(lambda s: len(s.values(f"airflow.userattrs.sync_duration{named}", "ms")) == 2)
    for base in ("airflow.userattrs", f"airflow.userattrs.{{}}{named}"):

        def sent(metric: str, base: str = base) -> list[float]:
            return statsd.values(base.format(metric) if "{}" in base else f"{base}.{metric}")

        assert sent("users_delivered") == [28, 2]  # one value per try, in try order
        assert sent("users_postponed") == [2, 0] and sent("users_failed") == [2, 0]
        assert sent("users_rejected") == [0, 0] and sent("deferrals") == [0, 0]
        assert sum(sent("requests")) == 32 == sandbox.stats()["requests"]["total"]
        assert sent("throttled_requests") == [0, 0] and len(sent("quota_wait_ms")) == 2
    durations = statsd.values("airflow.userattrs.sync_duration", "ms")
    assert len(durations) == 2 and all(d >= 0 for d in durations)
    # Plain StatsD drops tags: the tagged copy is the plain name (Datadog, InfluxDB and OTel read the tags).
    assert not [line for line in statsd.lines if "vendor=" in line]


def test_a_deferred_try_counts_once_with_its_wait_and_influx_tags(dag_harness, sandbox, statsd):
    # The 7th request is answered 429 "come back in 3 s" and defer_after=1: the try defers once and resumes; its
    # resumption must not count the users of the first part again. Two ids are invalid: rejected before sending.
    sandbox.script([{"delay": 0, "vendor": "dx"}] * 6 + [{"status": 429, "retry_after": "3", "vendor": "dx"}])
    records = records_literal("dx", 30)[:-1] + ', {"email": "not-an-email", "plan": "x"}, {"email": None}]'
    result = run_in_worker_process(
        dag_harness,
        statsd,
        "metrics_defer",
        f"""
        UpdateUserAttributesOperator(
            task_id="push", conn_id="dx_default", user_id_field="{USER_ID_FIELD["dx"]}", max_failure_ratio=0.1,
            records={records}, checkpoint_every=10, defer_after=1, hook_params={{"concurrency": 1}},
        )
        """,
        statsd_influxdb_enabled="True",
    )
    assert result.state == "success", result.tasks
    report = result.xcom("push")
    assert report["deferrals"] == 1 and (report["succeeded"], report["failed"]) == (30, 2)
    tags = ",vendor=dx,conn_id=dx_default"
    statsd.poll(lambda s: bool(s.values(f"airflow.userattrs.sync_duration{tags}", "ms")))
    for name in ("airflow.userattrs.{}" + tags, "airflow.userattrs.{}.dx.dx_default"):
        assert statsd.values(name.format("users_delivered")) == [30]
        assert statsd.values(name.format("users_rejected")) == [2] == statsd.values(name.format("users_failed"))
        assert statsd.values(name.format("users_postponed")) == [0]
        assert statsd.values(name.format("deferrals")) == [1] == statsd.values(name.format("throttled_requests"))
        assert statsd.values(name.format("requests")) == [31] == [report["requests_sent"]]
        assert statsd.values(name.format("quota_wait_ms")) == [round(report["waited_seconds"] * 1000)]
    (duration,) = statsd.values(f"airflow.userattrs.sync_duration{tags}", "ms")
    assert duration >= 3000  # the try's wall time includes the triggerer's wait


def test_every_counter_is_documented_in_the_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    for name in [*COUNTERS, "sync_duration"]:
        assert f"`airflow.userattrs.{name}`" in readme, name


def test_counts_are_per_try_deltas_and_never_negative():
    report = {"succeeded": 30, "failed": 3, "retryable_users": 1, "requests_sent": 40, "throttled_requests": 2}
    report |= {"waited_seconds": 1.5, "deferrals": 1, "wall_seconds": 4.0}
    counters, wall = try_metrics(report, Counts(delivered=10, rejected=1, requests=12, waited_seconds=0.5))
    assert counters == {
        "users_delivered": 20,
        "users_failed": 2,
        "users_rejected": 1,
        "users_postponed": 1,
        "requests": 28,
        "throttled_requests": 2,
        "quota_wait_ms": 1000,
        "deferrals": 1,
    }
    assert wall == 4.0
    counters, _ = try_metrics({"error": "refused"}, Counts(delivered=5))
    assert set(counters.values()) == {0}
    assert Counts.from_json(Counts(delivered=3).to_json()) == Counts(delivered=3)
    assert Counts.from_json(None) is None


def test_connection_ids_become_one_name_segment():
    assert name_part("dx_default") == "dx_default"
    assert name_part("crm.prod") == "crm__prod"  # as Airflow keeps task ids of task groups in its names
    assert name_part("crm prod/1") == "crm_prod_1"


def test_metrics_off_sends_nothing_and_costs_no_checkpoint_read(monkeypatch):
    from airflow_provider_userattrs import metrics

    for option in ("STATSD_ON", "STATSD_DATADOG_ENABLED", "OTEL_ON"):
        monkeypatch.setenv(f"AIRFLOW__METRICS__{option}", "False")
    assert not metrics.metrics_enabled()
    monkeypatch.setenv("AIRFLOW__METRICS__OTEL_ON", "True")
    assert metrics.metrics_enabled()


def test_a_dry_run_sends_no_metric(monkeypatch):
    from airflow_provider_userattrs import compat, metrics

    sent = defaultdict(list)
    monkeypatch.setattr(compat.Stats, "incr", lambda *a, **k: sent["incr"].append(a), raising=False)
    metrics.emit({"dry_run": True, "vendor": "dx", "conn_id": "c", "succeeded": 3}, Counts())
    assert not sent
