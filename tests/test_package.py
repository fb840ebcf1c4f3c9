"""The package as it would be published: built, checked by twine, and installed from the wheel alone.

The checkout hides packaging mistakes (a module left out of the wheel, a dependency only the test extra
brings, an entry point that names a moved object): the editable install imports from the source tree. Here
the sdist and wheel are built with ``python -m build``, checked with ``twine check --strict``, and the wheel is
installed with its dependencies from the package registry into a fresh virtual environment (uv, with its
cache), where ``airflow providers list`` must show it, the sandbox must start and a DAG must run.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from airflow_provider_userattrs import __version__
from airflow_provider_userattrs.get_provider_info import get_provider_info
from tests.conftest import REPO_ROOT

WHEEL_NAME = f"airflow_provider_userattrs-{__version__}-py3-none-any.whl"
SDIST_NAME = f"airflow_provider_userattrs-{__version__}.tar.gz"


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(found).exists():
        pytest.fail("uv is not installed: scripts/bootstrap.sh installs it")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this test session's Airflow, venv and Python path settings."""
    drop = ("AIRFLOW", "USERATTRS", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "OPENLINEAGE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env["PATH"] = os.pathsep.join([str(Path(uv()).parent), path])
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel (built from the sdist, as ``python -m build`` does by default)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted([SDIST_NAME, WHEEL_NAME])
    return out


def test_twine_check_passes(dist):
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


def test_the_wheel_holds_the_package_and_nothing_else(dist):
    with zipfile.ZipFile(dist / WHEEL_NAME) as wheel:
        names = set(wheel.namelist())
        info = f"airflow_provider_userattrs-{__version__}.dist-info"
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    source = {
        str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "airflow_provider_userattrs").rglob("*.py") if _tracked(p)
    }
    assert source <= names, f"missing from the wheel: {sorted(source - names)}"
    assert "airflow_provider_userattrs/py.typed" in names
    assert not any(n.startswith(("tests/", "dags/", "benchmarks/", "scripts/", "docs/")) for n in names)
    assert metadata["Version"] == __version__
    assert metadata["Name"] == "airflow-provider-userattrs"
    assert set(metadata.get_all("Provides-Extra") or []) >= {"openlineage", "postgres", "sqlite", "test"}
    requires = metadata.get_all("Requires-Dist") or []
    assert not any("openlineage" in r for r in requires if "extra ==" not in r), "OpenLineage must stay optional"
    assert "get_provider_info:get_provider_info" in entry_points
    assert "[airflow.plugins]" in entry_points and "userattrs-sandbox" in entry_points


def _tracked(path: Path) -> bool:
    """Files of the source tree that are part of the package (not caches or another engineer's scratch)."""
    return "__pycache__" not in path.parts


def test_provider_metadata_is_complete():
    info = get_provider_info()
    assert info["versions"] == [__version__]
    for integration in info["integrations"]:
        assert integration["external-doc-url"].startswith("https://")
        assert "logo" not in integration  # the package ships no logos
        for guide in integration["how-to-guide"]:
            assert (REPO_ROOT / guide.lstrip("/")).is_file(), guide
    names = {i["integration-name"] for i in info["integrations"]}
    assert {o["integration-name"] for o in info["operators"]} == names
    assert {h["integration-name"] for h in info["hooks"]} == names
    (uris,) = info["asset-uris"]
    assert uris["schemes"] == ["userattrs"]
    for key in ("handler", "factory", "to_openlineage_converter"):
        module, _, name = uris[key].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), uris[key]
    (plugin,) = info["plugins"]
    module, _, name = plugin["plugin-class"].rpartition(".")
    assert getattr(importlib.import_module(module), name).name == plugin["name"]


SMOKE_DAG = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

with DAG("userattrs_smoke", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    UpdateUserAttributesOperator(
        task_id="push",
        conn_id="dx_default",
        user_id_field="email",
        records=[{"email": "ann@example.com", "plan": "pro"}, {"email": "bob@example.com", "plan": "free"}],
    )
"""


@pytest.mark.slow
def test_the_wheel_installs_and_runs_in_a_clean_venv(dist, tmp_path):
    started = time.monotonic()
    venv, home, dags = tmp_path / "venv", tmp_path / "airflow", tmp_path / "dags"
    dags.mkdir()
    (dags / "userattrs_smoke.py").write_text(SMOKE_DAG)
    python = shutil.which("python3.11") or getattr(sys, "_base_executable", sys.executable)
    run([uv(), "venv", "--quiet", "--python", python, str(venv)], tmp_path, clean_env())
    # the wheel and what it declares, from the registry: not the checkout, not the test extra
    run([uv(), "pip", "install", "--quiet", "--python", str(venv / "bin/python"), str(dist / WHEEL_NAME)], tmp_path)
    bundle = [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}]
    bundle[0]["kwargs"] = {"path": str(dags), "refresh_interval": 0}  # type: ignore[assignment]
    env = clean_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(bundle),
        USERATTRS_FAILURE_PATH=f"file://{tmp_path / 'failures'}",
    )
    where = run(
        [str(venv / "bin/python"), "-c", "import airflow_provider_userattrs as p; print(p.__file__)"],
        tmp_path,
        env,
    )
    assert where.strip().startswith(str(venv)), where  # imported from the venv, not the checkout

    providers = run([str(venv / "bin/airflow"), "providers", "list"], tmp_path, env)
    assert "airflow-provider-userattrs" in providers and __version__ in providers, providers

    port_file = tmp_path / "sandbox.port"
    sandbox = subprocess.Popen(
        [str(venv / "bin/userattrs-sandbox"), "--port", "0", "--port-file", str(port_file)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = wait_for_sandbox(port_file, sandbox)
        env["AIRFLOW_CONN_DX_DEFAULT"] = json.dumps({"conn_type": "dx", "host": url, "password": "sandbox-token"})
        run([str(venv / "bin/airflow"), "db", "migrate"], tmp_path, env)
        run([str(venv / "bin/airflow"), "dags", "test", "userattrs_smoke"], tmp_path, env)
        with urllib.request.urlopen(f"{url}/_sandbox/state?vendor=dx", timeout=10) as answer:
            state = json.load(answer)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    assert state == {"ann@example.com": {"plan": "pro"}, "bob@example.com": {"plan": "free"}}
    print(f"clean-venv smoke test: {time.monotonic() - started:.0f} s")


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def wait_for_sandbox(port_file: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return f"http://127.0.0.1:{port_file.read_text().strip()}"
        assert process.poll() is None, "the sandbox exited"
        time.sleep(0.1)
    raise AssertionError("the sandbox did not start within 60 s")
