"""The vendor sandbox in a process of its own, and the Airflow connections that point at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import baselines as bl
from benchmarks.settings import REPO


class Sandbox:
    """``python -m airflow_provider_userattrs.sandbox`` on a free port, in its own process."""

    def __init__(self, workdir: Path) -> None:
        from airflow_provider_userattrs.sandbox.client import SandboxClient

        port_file = workdir / "sandbox.port"
        self.log_path = workdir / "sandbox.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the process's lifetime
        command = [sys.executable, "-m", "airflow_provider_userattrs.sandbox", "--port", "0"]
        command += ["--port-file", str(port_file)]
        # User.com refuses attributes its app lacks: create the ones the scenarios send.
        command += [f"--usercom-attribute={name}" for name in (*bl.attributes(0), "churn_risk")]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError("the sandbox did not start within 60 s")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = self.process.pid
        self.client = SandboxClient(self.url, timeout=120)
        self.client.wait_until_up()

    def prepare(self, **faults: Any) -> None:
        """Forget data, counters and faults, then set this case's faults."""
        self.client.reset()
        if faults:
            self.client.set_faults(**faults)

    def requests(self) -> dict[str, Any]:
        return dict(self.client.stats()["requests"])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass
class Context:
    """What a forked child needs to know about this run."""

    url: str = ""
    sandbox_pid: int | None = None


CTX = Context()


def set_connections(url: str, port: int) -> None:
    os.environ["AIRFLOW_CONN_BENCH_ALTATECH"] = json.dumps({"conn_type": "altatech", "host": url, "password": bl.TOKEN})
    os.environ["AIRFLOW_CONN_BENCH_DX"] = json.dumps({"conn_type": "dx", "host": url, "password": bl.TOKEN})
    os.environ["AIRFLOW_CONN_BENCH_USERCOM"] = json.dumps({"conn_type": "usercom", "host": url, "password": bl.TOKEN})
    os.environ["AIRFLOW_CONN_BENCH_FYNO"] = json.dumps(
        {"conn_type": "fyno", "host": url, "password": bl.TOKEN, "extra": {"workspace_id": bl.FYNO_WORKSPACE}}
    )
    os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )
