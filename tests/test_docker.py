"""The Docker setup, without a Docker engine: the compose file and Dockerfile say what they should, their
healthcheck commands work against a real server, and the container's entrypoint script runs outside a container
against the test database (wait, migrate, serve on both ports, stop cleanly)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, make_url, text

from app.db.migrate import MIGRATIONS_DIR
from app.settings import Settings
from tests.support.ports import ReservedPort

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value, env: dict[str, str]) -> str:
    """Compose's `${NAME:-default}` substitution (`$$` is a literal `$`)."""
    value = _VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), str(value))
    return value.replace("$$", "$")


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def instruction(name: str) -> list[str]:
    return [args for kind, args in dockerfile_instructions() if kind == name]


def test_compose_runs_postgres_and_headwater_with_marquez_variable_names():
    services = COMPOSE["services"]
    assert set(services) == {"db", "headwater"}
    db, app = services["db"], services["headwater"]

    assert db["image"].startswith("postgres:")
    assert "random_page_cost=1.1" in db["command"]  # the planner setting the README advises for SSDs
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    # Named volumes, declared at the top level.
    assert [volume.split(":")[0] for volume in db["volumes"]] == list(COMPOSE["volumes"])
    assert (ROOT / "docker").resolve() == (DOCKER / app["build"]["context"] / "docker").resolve()
    assert (DOCKER / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert app["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert app["healthcheck"]["test"][0] == "CMD"

    # Ports: the API and the admin port, named as in Marquez's compose file.
    assert app["ports"] == [
        "${MARQUEZ_PORT:-5000}:${MARQUEZ_PORT:-5000}",
        "${MARQUEZ_ADMIN_PORT:-5001}:${MARQUEZ_ADMIN_PORT:-5001}",
    ]
    assert [interpolate(p, {"MARQUEZ_PORT": "8080"}) for p in app["ports"]] == ["8080:8080", "5001:5001"]

    # Every variable given to Headwater is one it reads, and they select the compose Postgres.
    environment = {name: interpolate(value, {}) for name, value in app["environment"].items()}
    known = {f"HEADWATER_{name.upper()}" for name in Settings.model_fields}
    known |= {c for f in Settings.model_fields.values() if f.validation_alias for c in f.validation_alias.choices}
    assert set(environment) <= known, set(environment) - known
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert app["environment"][name] == db["environment"][name]
    settings = _settings_from(environment)
    assert (settings.port, settings.admin_port) == (5000, 5001)
    url = settings.sqlalchemy_url
    assert (url.host, url.port, url.database, url.username) == ("db", 5432, "marquez", "marquez")
    assert settings.retention_days is None and settings.api_key_list == []


def _settings_from(environment: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    try:
        for name in [n for n in os.environ if n.startswith(("HEADWATER_", "POSTGRES_", "MARQUEZ_"))]:
            del os.environ[name]
        os.environ.update(environment)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_dockerfile_is_slim_non_root_with_healthcheck_and_the_entrypoint():
    assert re.fullmatch(r"python:3\.1\d+-slim", instruction("FROM")[0])
    users = instruction("USER")
    assert users and users[-1] not in ("root", "0")
    kinds = [kind for kind, _ in dockerfile_instructions()]
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")  # nothing runs as root after
    assert set(" ".join(instruction("EXPOSE")).split()) == {"5000", "5001"}
    assert instruction("HEALTHCHECK")
    entrypoint = json.loads(instruction("ENTRYPOINT")[0])
    assert json.loads(instruction("CMD")[0]) == ["serve"]
    copied = {args.split()[-1]: args.split()[0] for args in instruction("COPY")}
    assert copied["/usr/local/bin/" + entrypoint[0]] == "docker/entrypoint.sh"
    # The code and the migrations the entrypoint applies ship in the image, where the app looks for them.
    assert copied["./app"] == "app" and copied["./migrations"] == "migrations"
    assert MIGRATIONS_DIR == ROOT / "migrations"


def _run_healthcheck(command: list[str], env: dict[str, str]) -> int:
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, timeout=30).returncode


def test_healthcheck_commands_pass_against_a_server_and_fail_without_one(live_server):
    dockerfile_check = shlex.split(instruction("HEALTHCHECK")[0].split(" CMD ", 1)[1])
    dockerfile_check[0] = sys.executable
    compose_check = [sys.executable, *COMPOSE["services"]["headwater"]["healthcheck"]["test"][2:]]
    up = {"MARQUEZ_PORT": str(live_server.port), "MARQUEZ_ADMIN_PORT": str(live_server.admin_port)}
    assert _run_healthcheck(dockerfile_check, up) == 0
    assert _run_healthcheck(compose_check, up) == 0
    with ReservedPort() as port, ReservedPort() as admin_port:  # held, so nothing listens there meanwhile
        down = {"MARQUEZ_PORT": str(port), "MARQUEZ_ADMIN_PORT": str(admin_port)}
        assert _run_healthcheck(dockerfile_check, down) != 0
        assert _run_healthcheck(compose_check, down) != 0


@pytest.fixture
def fresh_database(database_url, engine, tmp_path) -> dict[str, str]:
    """The environment a container would get for a database nothing has touched yet: POSTGRES_* on Postgres
    (a new database on the test server), the SQLite file otherwise."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield {"HEADWATER_DATABASE_URL": f"sqlite:///{tmp_path / 'container.db'}"}
        return
    name = f"entrypoint_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            "POSTGRES_HOST": url.host,
            "POSTGRES_PORT": str(url.port),
            "POSTGRES_DB": name,
            "POSTGRES_USER": url.username,
            "POSTGRES_PASSWORD": url.password or "marquez",
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _container_env(database: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "POSTGRES_", "MARQUEZ_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `headwater` as installed
    return {**env, **database, **extra}


@pytest.fixture
def two_ports() -> Iterator[tuple[int, int]]:
    with ReservedPort() as port, ReservedPort() as admin_port:
        yield port, admin_port


def test_entrypoint_waits_migrates_serves_both_ports_and_stops_cleanly(fresh_database, two_ports, tmp_path):
    port, admin_port = two_ports
    env = _container_env(
        fresh_database, MARQUEZ_PORT=str(port), MARQUEZ_ADMIN_PORT=str(admin_port), HEADWATER_HOST="127.0.0.1"
    )
    log = tmp_path / "container.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["sh", str(DOCKER / "entrypoint.sh")], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        admin = httpx.get(f"http://127.0.0.1:{admin_port}/healthcheck", timeout=5)
        assert admin.status_code == 200 and admin.json()["status"] == "ok"
        assert "headwater_http_request_duration_seconds" in httpx.get(f"http://127.0.0.1:{admin_port}/metrics").text
        assert httpx.get(f"http://127.0.0.1:{admin_port}/api/v1/namespaces").status_code == 404  # admin only
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/namespaces").status_code == 200  # migrated
        process.send_signal(signal.SIGTERM)  # `docker stop`: the shell exec'd the server, which gets it
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Other commands run as headwater commands against the same database.
    result = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), "purge", "--older-than", "30d", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "would delete" in result.stdout


def test_entrypoint_gives_up_clearly_when_the_database_never_answers(tmp_path):
    with ReservedPort() as port:  # nothing listens on it
        env = _container_env({"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(port)}, HEADWATER_DB_WAIT_SECONDS="1")
        result = subprocess.run(
            ["sh", str(DOCKER / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert "did not answer within 1s" in result.stderr
