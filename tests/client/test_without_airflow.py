"""The vendor client runs where Apache Airflow is not installed: a plain script against the sandbox.

A virtual environment is made with the client's own dependencies only (the versions of this one, so that uv
takes them from its cache), the checkout on ``PYTHONPATH`` and no ``apache-airflow``; a script there
connects to each vendor of the sandbox (on a real port) and syncs users, then reports what it imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from airflow_provider_userattrs.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DEPENDENCIES = ("urllib3", "jsonschema", "rfc3339-validator")

SCRIPT = r"""
import json, sys
from airflow_provider_userattrs.client import connect
from airflow_provider_userattrs.results import UserUpdate

url = sys.argv[1]
users = {
    "altatech": ["u1", "u2", "u3"],
    "fyno": ["d1", "d2", "d3"],
    "dx": ["a@example.com", "b@example.com", "nobody@example.invalid"],
    "usercom": [1, 2, 900000001],
}
settings = {"fyno": {"workspace_id": "sandboxwsid"}}
out = {}
for vendor, ids in users.items():
    with connect(vendor, base_url=url, token="sandbox-token", **settings.get(vendor, {})) as client:
        results = list(client.update_users(UserUpdate(i, {"plan": "pro", "seats": 3}) for i in ids))
        results += list(client.mass_update("tier", "gold", ids[:2]))
        out[vendor] = {
            "ok": sorted({str(r.user_id) for r in results if r.ok}),
            "failed": sorted({str(r.user_id) for r in results if not r.ok}),
            "requests": client.stats().requests_sent,
            "test_connection": client.test_connection()[0],
        }
try:
    import airflow  # noqa: F401
    out["airflow_importable"] = True
except ImportError:
    out["airflow_importable"] = False
out["airflow_modules"] = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def plain_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed (scripts/bootstrap.sh installs it)")
    env_dir = tmp_path_factory.mktemp("no-airflow") / "venv"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(env_dir)], check=True, timeout=120)
    pins = [f"{name}=={version(name)}" for name in CLIENT_DEPENDENCIES]
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(env_dir / "bin/python"), *pins], check=True, timeout=300
    )
    return env_dir / "bin/python"


@pytest.mark.integration
def test_the_client_syncs_every_vendor_without_airflow_installed(plain_python: Path) -> None:
    with SandboxServer(port=0, usercom_attributes=["plan", "seats", "tier"]) as sandbox:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
        done = subprocess.run(
            [str(plain_python), "-c", SCRIPT, sandbox.url], capture_output=True, text=True, timeout=120, env=env
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        state = {vendor: sandbox.state(vendor) for vendor in ("altatech", "fyno", "dx", "usercom")}
    assert out.pop("airflow_importable") is False and out.pop("airflow_modules") == []
    assert out["altatech"]["ok"] == ["u1", "u2", "u3"] and out["fyno"]["ok"] == ["d1", "d2", "d3"]
    # The sandbox's unknown users are refused, and counted so, not delivered.
    assert out["dx"]["failed"] == ["nobody@example.invalid"] and out["usercom"]["failed"] == ["900000001"]
    assert all(result["test_connection"] for result in out.values())
    assert all(result["requests"] > 0 for result in out.values())
    assert state["dx"] and state["usercom"], "the sandbox holds what the client delivered"
