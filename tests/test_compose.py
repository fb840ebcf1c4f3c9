"""The Docker deployment files: docker-compose.yaml is valid for a real Compose implementation and has the
expected topology, and the Dockerfile builds on an Airflow 3 image.

The Compose check needs no Docker daemon (`config` only parses, interpolates and validates). It is
skipped when no Compose implementation is installed, unless USERATTRS_REQUIRE_COMPOSE=1 (CI), where it
fails instead; ``scripts/install-compose.sh`` installs Debian's docker-compose. USERATTRS_COMPOSE may name
the command to use (e.g. ``/path/to/docker-compose``), overriding the search.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
EXPECTED_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "warehouse", "warehouse-seed", "sandbox"}
VENDOR_CONNECTIONS = {
    "AIRFLOW_CONN_ALTATECH_DEFAULT": "altatech",
    "AIRFLOW_CONN_FYNO_DEFAULT": "fyno",
    "AIRFLOW_CONN_DX_DEFAULT": "dx",
    "AIRFLOW_CONN_USERCOM_DEFAULT": "usercom",
}
WAREHOUSE_CONNECTION = "AIRFLOW_CONN_USERATTRS_WAREHOUSE"
FAILURE_DIR = "/opt/airflow/userattrs-failures"


def _compose_command() -> list[str] | None:
    """The Compose CLI to use: $USERATTRS_COMPOSE, then `docker compose` (v2 plugin), then `docker-compose`."""
    override = os.environ.get("USERATTRS_COMPOSE", "").strip()
    if override:
        return shlex.split(override)
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    return None


@pytest.fixture(scope="module")
def compose_cmd() -> list[str]:
    cmd = _compose_command()
    if cmd is None:
        reason = (
            "no Compose implementation installed (neither `docker compose` nor `docker-compose`); "
            "run scripts/install-compose.sh"
        )
        if os.environ.get("USERATTRS_REQUIRE_COMPOSE") == "1":
            pytest.fail(f"USERATTRS_REQUIRE_COMPOSE=1 but {reason}")
        pytest.skip(reason)
    return cmd


def _run_compose(cmd: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, "-f", str(COMPOSE_FILE), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yaml as PyYAML reads it (merge keys `<<` resolved)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "no services in docker-compose.yaml"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _uses_project_image(compose: dict[str, Any], service: dict[str, Any]) -> bool:
    project_image = compose["x-airflow-common"]["image"]
    return "build" in service or service.get("image") == project_image


# --- the real Compose implementation -------------------------------------------------------------------


def test_compose_config_is_valid(compose_cmd: list[str]) -> None:
    result = _run_compose(compose_cmd, "config", "--quiet")
    assert result.returncode == 0, f"{shlex.join(compose_cmd)} config --quiet failed:\n{result.stderr}"


def test_compose_config_renders_all_services(compose_cmd: list[str]) -> None:
    # Also guards against wrappers that swallow the exit code: the rendered model must be there.
    result = _run_compose(compose_cmd, "config")
    assert result.returncode == 0, f"{shlex.join(compose_cmd)} config failed:\n{result.stderr}"
    rendered = yaml.safe_load(result.stdout)
    assert isinstance(rendered, dict), f"`config` printed no compose model:\n{result.stdout}\n{result.stderr}"
    assert set(rendered["services"]) == EXPECTED_SERVICES
    seed = rendered["services"]["warehouse-seed"]["command"]
    assert seed[seed.index("--users") + 1] == "5000"


# --- topology, read with PyYAML --------------------------------------------------------------------------


def test_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= EXPECTED_SERVICES, f"missing: {sorted(EXPECTED_SERVICES - set(services))}"


def test_airflow_components_and_commands(services: dict[str, dict[str, Any]]) -> None:
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    init_env = _env(services["airflow-init"])
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init_env["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_airflow_services_use_the_local_image(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES | {"sandbox", "warehouse-seed"}:
        assert services[name].get("build") == ".", f"{name} is not built from the local Dockerfile"


def test_celery_executor_and_core_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"], name
        assert "AIRFLOW__CORE__FERNET_KEY" in env, name


def test_project_image_services_have_the_connections(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    users = [name for name, svc in services.items() if _uses_project_image(compose, svc)]
    assert set(users) >= AIRFLOW_SERVICES | {"sandbox", "warehouse-seed"}
    for name in users:
        env = _env(services[name])
        for var, conn_type in VENDOR_CONNECTIONS.items():
            conn = json.loads(env[var])
            assert conn["conn_type"] == conn_type, (name, var)
            assert conn["host"] == "http://sandbox:8090", (name, var)
            assert conn["password"], (name, var)
            # `sandbox` is not a loopback host: plain http needs the explicit opt-in.
            assert conn["extra"]["allow_insecure_http"] is True, (name, var)
        fyno = json.loads(env["AIRFLOW_CONN_FYNO_DEFAULT"])["extra"]
        assert fyno["workspace_id"] == "sandboxwsid" and fyno["version"] == "live", name
        warehouse = json.loads(env[WAREHOUSE_CONNECTION])
        assert warehouse == {
            "conn_type": "postgres",
            "host": "warehouse",
            "login": "warehouse",
            "password": "warehouse",
            "schema": "warehouse",
            "port": 5432,
        }, name
        assert env["USERATTRS_WAREHOUSE_CONN_ID"] == "userattrs_warehouse", name
        assert env["USERATTRS_FAILURE_PATH"] == FAILURE_DIR, name


def test_failure_files_live_on_a_named_volume(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    named = set(compose.get("volumes") or {})
    for name in ("airflow-worker", "airflow-scheduler"):
        mounts = dict(m.split(":", 1)[::-1] for m in services[name]["volumes"])
        source = mounts[FAILURE_DIR]
        assert source in named, f"{name}: {FAILURE_DIR} is not on a named volume ({source})"


def test_dags_are_mounted(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        assert "./dags:/opt/airflow/dags" in services[name]["volumes"], name


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "warehouse", "sandbox", "airflow-apiserver", "airflow-scheduler"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
    sandbox_check = " ".join(services["sandbox"]["healthcheck"]["test"])
    assert "http://localhost:8090/_sandbox/health" in sandbox_check
    assert "urllib" in sandbox_check  # curl may not exist in the image


def test_depends_on_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["warehouse-seed"]["depends_on"]["warehouse"]["condition"] == "service_healthy"
    worker = services["airflow-worker"]["depends_on"]
    assert worker["sandbox"]["condition"] == "service_healthy"
    assert worker["warehouse-seed"]["condition"] == "service_completed_successfully"


def test_warehouse_and_sandbox(services: dict[str, dict[str, Any]]) -> None:
    warehouse = services["warehouse"]
    assert warehouse["image"] == "postgres:16"
    assert _env(warehouse) == {
        "POSTGRES_USER": "warehouse",
        "POSTGRES_PASSWORD": "warehouse",
        "POSTGRES_DB": "warehouse",
    }
    seed = services["warehouse-seed"]["command"]
    assert seed[:3] == ["python", "-m", "airflow_provider_userattrs.demo.warehouse"]
    assert seed[seed.index("--target") + 1] == "postgresql://warehouse:warehouse@warehouse:5432/warehouse"
    sandbox = services["sandbox"]
    # then --usercom-attribute flags: tests/sandbox checks them against what the example DAGs send
    assert sandbox["command"][:7] == [
        "python",
        "-m",
        "airflow_provider_userattrs.sandbox",
        "--host",
        "0.0.0.0",
        "--port",
        "8090",
    ]
    assert "8090:8090" in sandbox["ports"]


# --- Dockerfile -------------------------------------------------------------------------------------------


def test_dockerfile_is_based_on_airflow_3() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert froms, "Dockerfile has no FROM"
    match = re.fullmatch(r"apache/airflow:(\d+)\.(\d+)\.(\d+)(?:-python(3\.\d+))?", froms[0])
    assert match, f"base image is not a pinned apache/airflow tag: {froms[0]}"
    assert int(match.group(1)) == 3, f"Airflow major version is {match.group(1)}, expected 3"


def test_dockerfile_installs_the_provider_as_the_airflow_user() -> None:
    # The official image's documented way: `USER airflow`, then pip install.
    instructions = re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines()
    user = "root"
    installs = []
    for line in (line.strip() for line in instructions):
        if line.startswith("USER "):
            user = line.split()[1]
        elif line.startswith("RUN ") and "pip install" in line:
            installs.append((user, line))
    assert installs, "Dockerfile runs no pip install"
    assert all(user == "airflow" for user, _ in installs), installs
    assert any('"/opt/userattrs[postgres,sqlite]"' in line and "--no-cache-dir" in line for _, line in installs)
