"""A real Airflow 3 deployment on this machine, built from the project's own code, and torn down again.

What :class:`AirflowStack` starts (everything in a fresh temporary directory, nothing shared with other runs):

* two fresh PostgreSQL databases on ``127.0.0.1:5432`` (user ``postgres``, trust auth):
  ``userattrs_e2e_<id>_meta`` (the Airflow metadata DB and the Celery result backend) and
  ``userattrs_e2e_<id>_wh`` (the demo warehouse, built by ``build_warehouse`` into the ``userattrs_demo`` schema);
* the vendor sandbox (``python -m airflow_provider_userattrs.sandbox --port 0``);
* an ``AIRFLOW_HOME`` configured through environment variables only: CeleryExecutor with Redis as the broker
  (``redis://127.0.0.1:6379/5`` and a queue of its own, so that other users of that Redis are not disturbed),
  SimpleAuthManager with ``admin``/``admin``, the repository's ``dags/`` as the DAG bundle, the four vendor
  connections on the sandbox and the warehouse connection as ``AIRFLOW_CONN_*`` variables;
* ``airflow db migrate``, then the api-server, scheduler, dag-processor, triggerer and two Celery workers
  (``w1``, ``w2``, concurrency 2 each), each in a process group of its own, logging to ``<tmp>/logs/*.log``.

``stop()`` kills every process it started (found by a marker in their environment, so task processes that put
themselves into process groups of their own are found too), drops both databases and the Redis queue, and
removes the temporary directory; it runs on ``__exit__``, on a failed start and at interpreter exit.

Command line (Ctrl-C tears the stack down)::

    .venv/bin/python scripts/e2e_stack.py                 # bring it up and wait
    .venv/bin/python scripts/e2e_stack.py --smoke         # bring it up, run one sync through the API, tear down
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"
VENDORS = ("altatech", "fyno", "dx", "usercom")
E2E_ALTATECH_QUOTA = (100, 2.0)
"""requests per window (s) declared on altatech_default; the quota test sets the sandbox to the same."""
WORKERS = ("w1", "w2")
EXAMPLE_DAGS = ("userattrs_warehouse_sync", "userattrs_mass_update", "userattrs_manual_update")
MARKER = "USERATTRS_E2E_STACK"
"""Environment variable carrying the stack id in every process it starts (and their children)."""

HOSTNAME_MODULE = '''"""Per-worker task instance hostname for the e2e stack (two Celery workers share one machine)."""
import os
import socket


def hostname():
    return os.environ.get("USERATTRS_E2E_HOSTNAME") or socket.getfqdn()
'''


class StackError(RuntimeError):
    """The stack could not be started or did not behave; the message carries the relevant log lines."""


def _die_with_parent() -> None:
    """In a component, before exec: SIGTERM when the process that started it dies, however it dies.

    The safety net for a test runner killed with SIGKILL, where neither ``finally`` nor ``atexit`` runs.
    """
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_problem(host: str = "127.0.0.1", port: int = 5432, user: str = "postgres") -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    try:
        import psycopg2

        psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL at {host}:{port} is not reachable ({type(exc).__name__}: {' '.join(str(exc).split())})"
    return None


def redis_problem(host: str = "127.0.0.1", port: int = 6379) -> str | None:
    """Why Redis cannot be used (None when it can); a raw PING, no client library needed."""
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"Redis at {host}:{port} is not reachable ({type(exc).__name__}: {exc})"
    if not answer.startswith(b"+PONG"):
        return f"Redis at {host}:{port} answered PING with {answer[:40]!r}"
    return None


def celery_provider_problem(python: str = sys.executable) -> str | None:
    """Why the CeleryExecutor cannot be used (None when it can)."""
    probe = "import celery, redis, airflow.providers.celery.executors.celery_executor"
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return f"apache-airflow-providers-celery (with celery and redis) is not importable in {python}: {last}"
    return None


def stack_processes(stack_id: str, component: str | None = None) -> list[psutil.Process]:
    """Every live process whose environment carries this stack's marker (optionally: of one component)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get(MARKER) != stack_id:
            continue
        if component is not None and env.get("USERATTRS_E2E_COMPONENT") != component:
            continue
        found.append(proc)
    return found


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            proc.send_signal(sig)


class AirflowStack:
    """Airflow 3 with CeleryExecutor, for real: see the module docstring. Use as a context manager."""

    username = "admin"
    password = "admin"

    def __init__(
        self,
        *,
        users: int = 2000,
        redis_db: int = 5,
        redis_host: str = "127.0.0.1",
        redis_port: int = 6379,
        pg_host: str = "127.0.0.1",
        pg_port: int = 5432,
        pg_user: str = "postgres",
        heartbeat_timeout: int = 20,
        worker_concurrency: int = 2,
        python: str | None = None,
        log: Callable[[str], Any] | None = None,
        keep_logs_in: str | Path | None = None,
        startup_timeout: float = 300.0,
        dag_ids: Iterable[str] = EXAMPLE_DAGS,
    ) -> None:
        self.users = users
        self.redis_url = f"redis://{redis_host}:{redis_port}/{redis_db}"
        self.pg = {"host": pg_host, "port": pg_port, "user": pg_user}
        self.heartbeat_timeout = heartbeat_timeout
        self.worker_concurrency = worker_concurrency
        self.python = python or sys.executable
        self.airflow = [self.python, "-m", "airflow"]
        self._log = log or (lambda msg: print(f"e2e-stack: {msg}", file=sys.stderr, flush=True))
        self.keep_logs_in = Path(keep_logs_in) if keep_logs_in else None
        self.startup_timeout = startup_timeout
        self.dag_ids = set(dag_ids)

        self.id = f"{time.strftime('%m%d%H%M%S')}_{secrets.token_hex(3)}"
        self.meta_db = f"userattrs_e2e_{self.id}_meta"
        self.warehouse_db = f"userattrs_e2e_{self.id}_wh"
        self.queue = f"userattrs_e2e_{self.id}"
        self.root: Path | None = None
        self.home: Path | None = None
        self.logs: Path | None = None
        self.api_port = 0
        self.sandbox_url = ""
        self.env: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.warehouse_summary: dict[str, Any] = {}
        self._dbs_created: list[str] = []
        self._token: str | None = None
        self._session = requests.Session()
        self.killed: set[str] = set()
        self._stopped = False
        self._started = False

    # ------------------------------------------------------------------ addresses

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def dsn(self, dbname: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://{self.pg['user']}@{self.pg['host']}:{self.pg['port']}/{dbname}"

    @property
    def warehouse_dsn(self) -> str:
        return self.dsn(self.warehouse_db)

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> AirflowStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> AirflowStack:
        if self._started:
            return self
        self._started = True
        atexit.register(self.stop)
        began = time.monotonic()
        try:
            self.root = Path(tempfile.mkdtemp(prefix=f"userattrs-e2e-{self.id}-"))
            self.home = self.root / "airflow"
            self.logs = self.root / "logs"
            self.home.mkdir()
            self.logs.mkdir()
            self._create_databases()
            self._build_warehouse()
            self._start_sandbox()
            self._write_home()
            self._migrate()
            for name, args in self._component_commands().items():
                self._spawn(name, args)
            self._wait_ready()
        except BaseException:
            self._log("start failed; tearing down what was started")
            self.stop()
            raise
        self._log(
            f"up in {time.monotonic() - began:.0f} s: API/UI {self.api_url} (admin/admin), sandbox {self.sandbox_url}"
        )
        return self

    def stop(self) -> None:
        """Kill every process started, drop the databases and the Redis queue; idempotent, never raises."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        with contextlib.suppress(Exception):
            self._kill_everything()
        if self.keep_logs_in and self.logs and self.logs.exists():
            with contextlib.suppress(Exception):
                self._copy_logs(self.keep_logs_in)
        for db in reversed(self._dbs_created):
            try:
                self._admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except Exception as exc:
                self._log(f"could not drop database {db}: {exc}")
        self._dbs_created.clear()
        with contextlib.suppress(Exception):
            self._drop_redis_queue()
        if self.root and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        self._log("stopped: processes killed, databases dropped")

    def _kill_everything(self) -> None:
        # The trees are taken before anything dies: a child whose parent is gone is re-parented and lost.
        snapshot = {p.pid: p for name in self.processes for p in self.component_processes(name)}
        for proc in self.processes.values():  # polite first: SIGTERM to each process group
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        _signal_all(snapshot.values(), signal.SIGTERM)
        _, alive = psutil.wait_procs(list(snapshot.values()), timeout=8)
        for _ in range(3):
            left = {p.pid: p for p in alive}
            for name in self.processes:
                left.update((p.pid, p) for p in self.component_processes(name))
            left.update((p.pid, p) for p in stack_processes(self.id))
            if not left:
                break
            _signal_all(left.values(), signal.SIGKILL)
            _, alive = psutil.wait_procs(list(left.values()), timeout=5)
        for proc in self.processes.values():
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)

    def _copy_logs(self, target: Path) -> None:
        assert self.logs is not None
        target.mkdir(parents=True, exist_ok=True)
        for path in self.logs.glob("*.log"):
            shutil.copy2(path, target / path.name)
        if self.home and (self.home / "logs").exists():
            shutil.copytree(self.home / "logs", target / "task-logs", dirs_exist_ok=True)

    # ------------------------------------------------------------------ set-up steps

    def _admin_sql(self, statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **self.pg)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def _sweep_stale(self, max_age_hours: float = 3.0) -> None:
        """Remove what earlier stacks left when their runner was SIGKILLed (no ``finally``, no ``atexit``).

        Only ``userattrs_e2e_*`` databases older than ``max_age_hours`` with nobody connected, and the temporary
        directories of stacks whose metadata database is gone, also older than that.
        """
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **self.pg)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'userattrs\\_e2e\\_%%'"
                    " AND (pg_stat_file('base/' || d.oid || '/PG_VERSION')).modification"
                    "     < now() - %s * interval '1 hour'"
                    " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
                    (max_age_hours,),
                )
                stale = [row[0] for row in cur.fetchall()]
                for db in stale:
                    self._log(f"dropping the stale database {db} of an earlier run")
                    self._admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'userattrs\\_e2e\\_%%'")
                existing = {row[0] for row in cur.fetchall()}
        finally:
            conn.close()
        for path in Path(tempfile.gettempdir()).glob("userattrs-e2e-*"):
            match = re.match(r"userattrs-e2e-(\d{10}_[0-9a-f]{6})-", path.name)
            if not match or f"userattrs_e2e_{match[1]}_meta" in existing:
                continue
            if time.time() - path.stat().st_mtime > max_age_hours * 3600:
                shutil.rmtree(path, ignore_errors=True)

    def _create_databases(self) -> None:
        with contextlib.suppress(Exception):  # housekeeping only: never the reason a start fails
            self._sweep_stale()
        for db in (self.meta_db, self.warehouse_db):
            self._admin_sql(f'CREATE DATABASE "{db}"')
            self._dbs_created.append(db)
        self._log(f"databases {self.meta_db} (metadata) and {self.warehouse_db} (warehouse) created")

    def _build_warehouse(self) -> None:
        from airflow_provider_userattrs.demo.warehouse import build_warehouse

        self.warehouse_summary = build_warehouse(self.warehouse_dsn, users=self.users, schema="userattrs_demo")
        self._log(f"warehouse built: {self.warehouse_summary['users']} users")

    def _base_env(self) -> dict[str, str]:
        # Nothing of the caller's Airflow configuration leaks in (pytest's conftest sets its own).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "USERATTRS_", "_AIRFLOW"))}
        env[MARKER] = self.id
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _start_sandbox(self) -> None:
        assert self.root is not None
        port_file = self.root / "sandbox.port"
        from airflow_provider_userattrs.demo.segments import SYNC_ATTRIBUTES

        # User.com refuses attributes its app lacks: create what the example DAGs send (as docker-compose does).
        attributes = [f"--usercom-attribute={name}" for name in (*SYNC_ATTRIBUTES, "churn_risk_flag", "plan")]
        options = ["--port", "0", "--port-file", str(port_file), *attributes]
        self._spawn(
            "sandbox",
            [self.python, "-m", "airflow_provider_userattrs.sandbox", *options],
            env=self._base_env(),
        )
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            self._check_alive(["sandbox"])
            if time.monotonic() > deadline:
                raise StackError("the sandbox did not start:\n" + self.log_tail("sandbox"))
            time.sleep(0.1)
        self.sandbox_url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        from airflow_provider_userattrs.sandbox import SandboxClient

        SandboxClient(self.sandbox_url).wait_until_up()
        self._log(f"sandbox at {self.sandbox_url}")

    def connections(self) -> dict[str, str]:
        """Every vendor's default connection on the sandbox, and the warehouse."""
        conns = {}
        for vendor in VENDORS:
            conn: dict[str, Any] = {"conn_type": vendor, "host": self.sandbox_url, "password": "sandbox-token"}
            if vendor == "fyno":
                conn["extra"] = {"workspace_id": "sandboxwsid"}
            if vendor == "altatech":  # the quota the e2e quota test gives the sandbox's AltaTech account
                conn["extra"] = {"quota_requests": E2E_ALTATECH_QUOTA[0], "quota_window_seconds": E2E_ALTATECH_QUOTA[1]}
            conns[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(conn)
        conns["AIRFLOW_CONN_USERATTRS_WAREHOUSE"] = self.warehouse_dsn
        return conns

    def _write_home(self) -> None:
        assert self.home is not None and self.root is not None
        self.api_port = free_port()
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({self.username: self.password}) + "\n")
        pythonpath = self.root / "pythonpath"
        pythonpath.mkdir()
        (pythonpath / "userattrs_e2e_hostname.py").write_text(HOSTNAME_MODULE)
        bundle = {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS_FOLDER), "refresh_interval": 0},
        }
        from cryptography.fernet import Fernet

        env = self._base_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH", "")])),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # The provider's `userattrs` UI plugin is declared in its provider metadata, which Airflow reads
                # for plugins only when providers are discovered eagerly (or via an airflow.plugins entry point).
                "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.dsn(self.meta_db, "postgresql+psycopg2"),
                "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.dsn(self.meta_db),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": "userattrs-e2e-api-secret-key",
                "AIRFLOW__API_AUTH__JWT_SECRET": "userattrs-e2e-jwt-secret-not-for-production",
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # Only the runs a test triggers: no scheduled run appears when a DAG is unpaused.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                # A killed worker's running tasks are noticed after this many seconds without heartbeat.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                # A task a killed worker had received but not started stays queued: sent again after this.
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "USERATTRS_FAILURE_PATH": f"file://{self.root / 'failures'}",
                "USERATTRS_WAREHOUSE_CONN_ID": "userattrs_warehouse",
            }
        )
        env.update(self.connections())
        self.env = env
        (self.root / "stack.env").write_text("".join(f"export {k}={json.dumps(v)}\n" for k, v in sorted(env.items())))

    def _migrate(self) -> None:
        assert self.logs is not None
        began = time.monotonic()
        with open(self.logs / "db-migrate.log", "wb") as out:
            result = subprocess.run(
                [*self.airflow, "db", "migrate"], env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=600
            )
        if result.returncode:
            raise StackError(f"airflow db migrate failed ({result.returncode}):\n" + self.log_tail("db-migrate", 40))
        self._log(f"metadata DB migrated in {time.monotonic() - began:.0f} s")

    def _component_commands(self) -> dict[str, list[str]]:
        commands = {
            "api-server": [*self.airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "scheduler": [*self.airflow, "scheduler"],
            "dag-processor": [*self.airflow, "dag-processor"],
            "triggerer": [*self.airflow, "triggerer", "--skip-serve-logs"],
        }
        for name in WORKERS:
            commands[name] = self.worker_command(name)
        return commands

    def worker_command(self, name: str) -> list[str]:
        return [
            *self.airflow,
            "celery",
            "worker",
            "-H",
            f"{name}@%h",
            "-c",
            str(self.worker_concurrency),
            "-q",
            self.queue,
            "--skip-serve-logs",  # two workers on one machine would fight over the log server port
            "--without-mingle",
            "--without-gossip",
        ]

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        assert self.logs is not None
        env = dict(env or self.env)
        env["USERATTRS_E2E_COMPONENT"] = name
        if name in WORKERS:
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "userattrs_e2e_hostname.hostname"
            env["USERATTRS_E2E_HOSTNAME"] = f"{name}.{socket.gethostname()}"
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                args,
                env=env,
                cwd=str(self.root),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self.processes[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        if not self.logs:
            return ""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return f"(no {path.name})"
        text = path.read_text(errors="replace").splitlines()
        return f"--- last {lines} lines of {path.name} ---\n" + "\n".join(text[-lines:])

    def _check_alive(self, names: Iterable[str] | None = None) -> None:
        for name in names or list(self.processes):
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None and name not in self.killed:
                raise StackError(f"{name} exited with code {proc.returncode}:\n" + self.log_tail(name))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")

        # 1. API server answers and every component reports healthy.
        while True:
            self._check_alive()
            try:
                health = self._session.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
                if all((health.get(c) or {}).get("status") == "healthy" for c in components):
                    break
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise StackError(
                    f"components not healthy in {self.startup_timeout:.0f} s:\n{self.log_tail('api-server')}"
                )
            time.sleep(1)
        # 2. Both Celery workers connected to the broker.
        for name in WORKERS:
            self.wait_worker_ready(name, deadline - time.monotonic())
        # 3. The DAGs parsed (an import error in one of their files fails at once).
        while True:
            self._check_alive()
            dags = {d["dag_id"] for d in self.api("GET", "/dags", params={"limit": 1000})["dags"]}
            if self.dag_ids <= dags:
                break
            errors = self.api("GET", "/importErrors", params={"limit": 1000})["import_errors"]
            ours = [e for e in errors if Path(str(e.get("filename"))).stem in self.dag_ids - dags]
            if ours:
                raise StackError(f"DAG import errors: {json.dumps(ours, indent=1)[:3000]}")
            if time.monotonic() > deadline:
                raise StackError(
                    f"DAGs {sorted(self.dag_ids - dags)} not parsed (import errors: {errors}):\n"
                    + self.log_tail("dag-processor")
                )
            time.sleep(1)

    def wait_worker_ready(self, name: str, timeout: float = 120) -> None:
        assert self.logs is not None
        deadline = time.monotonic() + max(timeout, 5)
        path = self.logs / f"{name}.log"
        while True:
            self._check_alive([name])
            if path.exists() and " ready." in path.read_text(errors="replace"):
                return
            if time.monotonic() > deadline:
                raise StackError(f"Celery worker {name} not ready:\n" + self.log_tail(name))
            time.sleep(0.5)

    # ------------------------------------------------------------------ workers

    def component_processes(self, name: str) -> list[psutil.Process]:
        """Every live process of one component: its process tree, its process group and the marked processes.

        All three are needed: the task processes of a Celery worker put themselves into process groups of their
        own, and ``setproctitle`` (api-server, Celery) hides some processes' environment.
        """
        procs = {p.pid: p for p in stack_processes(self.id, name)}
        proc = self.processes.get(name)
        if proc is None:
            return list(procs.values())
        if proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                procs.setdefault(root.pid, root)
                for child in root.children(recursive=True):
                    procs.setdefault(child.pid, child)
        for other in psutil.process_iter(["pid"]):
            with contextlib.suppress(OSError, psutil.Error):
                if other.pid != os.getpid() and os.getpgid(other.pid) == proc.pid:
                    procs.setdefault(other.pid, other)
        return [p for p in procs.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def kill_worker(self, name: str) -> int:
        """SIGKILL a whole Celery worker, as when its machine dies; returns how many processes were killed.

        Everything is frozen first (SIGSTOP), so that no process forks or reports anything while the others die.
        """
        first = self.component_processes(name)
        _signal_all(first, signal.SIGSTOP)
        victims = list({p.pid: p for p in [*first, *self.component_processes(name)]}.values())
        _signal_all(victims, signal.SIGSTOP)
        _signal_all(victims, signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)
        proc = self.processes.get(name)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
        self.killed.add(name)
        self._log(f"worker {name} killed with SIGKILL ({len(victims)} processes)")
        return len(victims)

    def start_worker(self, name: str, timeout: float = 120) -> None:
        """(Re)start a Celery worker of the stack and wait until it is connected."""
        if name in self.processes and self.processes[name].poll() is None:
            return
        self._spawn(name, self.worker_command(name))
        self.killed.discard(name)
        self.wait_worker_ready_after_restart(name, timeout)

    def wait_worker_ready_after_restart(self, name: str, timeout: float) -> None:
        assert self.logs is not None
        path = self.logs / f"{name}.log"
        start = path.stat().st_size if path.exists() else 0
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive([name])
            with open(path, "rb") as fh:
                fh.seek(start)
                if b" ready." in fh.read():
                    return
            if time.monotonic() > deadline:
                raise StackError(f"Celery worker {name} not ready after restart:\n" + self.log_tail(name))
            time.sleep(0.5)

    # ------------------------------------------------------------------ REST API v2

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            response = self._session.post(
                f"{self.api_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=30,
            )
            if response.status_code not in (200, 201):
                raise StackError(f"POST /auth/token: HTTP {response.status_code}: {response.text[:500]}")
            self._token = str(response.json()["access_token"])
        return self._token

    def api(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok: Iterable[int] = (200, 201, 204),
    ) -> Any:
        """Call the REST API v2 (``path`` relative to ``/api/v2`` unless it starts with ``/api/`` or ``/auth/``)."""
        url = self.api_url + (path if path.startswith(("/api/", "/auth/")) else "/api/v2" + path)
        for attempt in range(2):
            response = self._session.request(
                method,
                url,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {self.token(refresh=attempt > 0)}"},
                timeout=60,
            )
            if response.status_code != 401:
                break
        if response.status_code not in set(ok):
            raise StackError(f"{method} {path}: HTTP {response.status_code}: {response.text[:2000]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False}, params={"update_mask": "is_paused"})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, *, unpause: bool = True) -> str:
        """Create a manual DAG run through the API; returns its run id."""
        if unpause:
            self.unpause(dag_id)
        run = self.api("POST", f"/dags/{quote(dag_id)}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        self._log(f"triggered {dag_id} run {run['dag_run_id']} with conf {conf}")
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}"))

    def wait(self, dag_id: str, run_id: str, timeout: float = 300, poll: float = 2.0) -> str:
        """Wait until the run is finished; returns its state (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.dag_run(dag_id, run_id)["state"])
            if state in ("success", "failed"):
                self._log(f"{dag_id} run {run_id}: {state}")
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} run {run_id} still {state} after {timeout:.0f} s: {self.describe(dag_id, run_id)}"
                )
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 1000}
        if task_id:
            params["task_id"] = task_id
        result = self.api("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances", params=params)
        tis = list(result["task_instances"])
        return [ti for ti in tis if task_id is None or ti["task_id"] == task_id]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/{map_index}/tries"
        return list(self.api("GET", path)["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """An XCom value through the API (``None`` when there is none), decoded from JSON."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/xcomEntries/{quote(key)}"
        result = self.api("GET", path, params={"map_index": map_index}, ok=(200, 404))
        if not isinstance(result, dict) or "value" not in result:
            return None
        value = result["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def describe(self, dag_id: str, run_id: str) -> str:
        """One line per task instance (state, try, hostname), for assertion messages."""
        with contextlib.suppress(Exception):
            return "; ".join(
                f"{ti['task_id']}[{ti['map_index']}]={ti['state']} try {ti['try_number']} on {ti.get('hostname')}"
                for ti in sorted(self.task_instances(dag_id, run_id), key=lambda t: (t["task_id"], t["map_index"]))
            )
        return "(task instances unavailable)"

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/logs/{try_number}"
        result = self.api("GET", path, params={"map_index": map_index}, ok=(200, 404))
        return json.dumps(result)[:20000]

    # ------------------------------------------------------------------ Redis clean-up

    def _drop_redis_queue(self) -> None:
        """Remove this stack's queue and its unacknowledged messages (other users of the Redis DB keep theirs)."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=3)
        keys = list(client.scan_iter(match=f"*{self.queue}*"))
        if keys:
            client.delete(*keys)
        for tag, payload in client.hgetall("unacked").items():
            if self.queue.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        # Celery's broadcast bookkeeping (pidbox bindings and their deadlines) is shared by every worker of the
        # database: removed only when nothing but that bookkeeping is left, i.e. no other stack uses it.
        bookkeeping = (
            b"_kombu.binding_deadlines",
            b"_kombu.binding.celery.pidbox",
            b"_kombu.binding.reply.celery.pidbox",
        )
        left = set(client.scan_iter(match="*"))
        if left and left <= {*bookkeeping, b"_kombu.binding.celeryev"}:
            client.delete(*left)


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[AirflowStack]:
    stack = AirflowStack(**kwargs)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _smoke(stack: AirflowStack) -> int:
    run_id = stack.trigger("userattrs_warehouse_sync", {"conn_id": "dx_default", "chunk_size": 500})
    state = stack.wait("userattrs_warehouse_sync", run_id, timeout=600)
    print(stack.describe("userattrs_warehouse_sync", run_id))
    print(json.dumps(stack.xcom("userattrs_warehouse_sync", run_id, "summarize"), indent=1)[:2000])
    return 0 if state == "success" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="e2e_stack.py")
    parser.add_argument("--users", type=int, default=2000, help="users in the demo warehouse (2000)")
    parser.add_argument("--redis-db", type=int, default=5, help="Redis database index for the broker (5)")
    parser.add_argument("--smoke", action="store_true", help="run one warehouse sync through the API, then stop")
    parser.add_argument("--keep-logs", help="copy the component logs here when stopping")
    args = parser.parse_args(argv)
    for problem in (postgres_problem(), redis_problem(), celery_provider_problem()):
        if problem:
            print(f"e2e-stack: {problem}", file=sys.stderr)
            return 2

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with running_stack(users=args.users, redis_db=args.redis_db, keep_logs_in=args.keep_logs) as stack:
        if args.smoke:
            return _smoke(stack)
        print(f"API/UI:  {stack.api_url}  (user {stack.username} / {stack.password})")
        print(f"sandbox: {stack.sandbox_url}")
        print(f"env:     source {stack.root}/stack.env   logs: {stack.logs}")
        print("Ctrl-C stops everything")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
                stack._check_alive()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
