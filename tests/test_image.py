"""The container image's contract, proven without a Docker engine.

Static checks read the Dockerfile, `.dockerignore`, `compose.yaml` and the lock. The replay
(`tests/_image.py`) then builds the image's filesystem here with the Dockerfile's own install
command and starts its ENTRYPOINT + CMD, as its non-root user, with the environment the ECS
task gets, against the embedded PostgreSQL.
"""

import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from bookshelf import contract
from bookshelf.config import Settings
from tests import _image, _relay
from tests._image import REPO, Dockerfile, Image
from tests.conftest import LiveServer, Postgres, free_port, wait_until_ready

API_KEY = "image-test-key-0123456789"
APP_ROLE = "bookshelf_app"
APP_DATABASE = "bookshelf_image"
# Everything that breaks a DSN or a shell: the secret must reach the driver intact.
AWKWARD_PASSWORD = "p@ss/w:rd %41#?\"' with spaces\\and;$HOME"
IMAGE_PYTHON = re.compile(r"^python:(3)\.(\d+)-slim-([a-z]+)$")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.parse()


# ---- static: the Dockerfile as written


def test_hadolint_reports_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([hadolint, "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # Ignores are allowed only with a reason on the same line.
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if "hadolint ignore=" in line:
            assert re.search(r"ignore=\S+\s+\S", line), f"unjustified ignore: {line}"


def test_bases_are_pinned_slim_python_3_12_or_newer(dockerfile: Dockerfile) -> None:
    bases = {stage.base for stage in dockerfile.stages}
    assert len(bases) == 1, f"build and runtime must share the base (venv symlinks): {bases}"
    match = IMAGE_PYTHON.match(bases.pop())
    assert match, "base must be python:3.<minor>-slim-<debian release>"
    assert int(match[2]) >= 12
    # No --platform anywhere: each platform's build stage installs that platform's wheels.
    assert "--platform" not in (REPO / "Dockerfile").read_text()


def test_uv_in_the_image_is_the_version_the_makefile_pins(dockerfile: Dockerfile) -> None:
    makefile = (REPO / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert pinned and dockerfile.uv_tag() == pinned[1]


def test_install_command_is_locked_runtime_only_and_not_editable(dockerfile: Dockerfile) -> None:
    runs = [_image._shell_command(r.value) for r in dockerfile.stage("build").all("RUN")]
    assert runs and all(run.startswith("uv sync ") for run in runs)
    for run in runs:
        words = run.split()
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(words)
        assert not {"--all-groups", "--group", "--all-extras", "--dev"} & set(words)
    env = dockerfile.stage("build").env()
    assert env["UV_COMPILE_BYTECODE"] == "1" and env["UV_PYTHON_DOWNLOADS"] == "never"


def test_runtime_stage_holds_only_the_environment_and_a_user(dockerfile: Dockerfile) -> None:
    runtime = dockerfile.runtime
    copies = [c.flags_and_args() for c in runtime.all("COPY")]
    assert copies == [({"from": ["build"]}, ["/app/.venv", "/app/.venv"])]
    (run,) = [_image._shell_command(r.value) for r in runtime.all("RUN")]
    assert run.split()[0] == "groupadd" and "useradd" in run
    assert not re.search(r"apt|pip|gcc|build-essential|uv ", run)
    uid, _, gid = runtime.one("USER").value.partition(":")
    assert int(uid) != 0 and int(gid) != 0, "USER must be a numeric non-root uid:gid"
    assert f"--uid {uid}" in run and f"--gid {gid}" in run


def test_process_contract_is_exec_form_sigterm_and_the_contract_port(
    dockerfile: Dockerfile,
) -> None:
    runtime = dockerfile.runtime
    assert runtime.one("ENTRYPOINT").exec_form() == ["bookshelf"]
    assert runtime.one("CMD").exec_form() == ["serve"]
    assert runtime.one("STOPSIGNAL").value == "SIGTERM"
    assert runtime.one("EXPOSE").value == str(contract.CONTAINER_PORT)
    env = runtime.env()
    assert env[contract.PORT] == str(contract.CONTAINER_PORT)
    assert env["BOOKSHELF_HOST"] == "0.0.0.0"
    assert contract.WORKERS not in env, "workers default to one per CPU the task gets"
    assert contract.DRAIN_SECONDS + 5 <= contract.STOP_TIMEOUT_SECONDS
    assert contract.KEEP_ALIVE_SECONDS > 60, "longer than the ALB's default idle timeout"


def test_healthcheck_is_the_contract_command_in_exec_form(dockerfile: Dockerfile) -> None:
    """The ECS task definition runs the same command (tests/infra/test_stack.py)."""
    value = dockerfile.runtime.one("HEALTHCHECK").value
    options, _, command = value.partition("CMD")
    assert json.loads(command) == list(contract.HEALTH_CHECK_COMMAND)
    timeout = re.search(r"--timeout=(\d+)s", options)
    assert timeout and int(timeout[1]) > 3, "longer than the command's own 3 s HTTP timeout"


def test_dockerignore_keeps_out_local_state_tests_and_history(tmp_path: Path) -> None:
    files = [
        ".git/HEAD", ".venv/bin/python", ".tools/bin/uv", ".data/postgres/PG_VERSION",
        "cdk.out/manifest.json", "tests/test_image.py", "bench/run.py", "infra/stack.py",
        ".env", "src/bookshelf/__pycache__/cli.cpython-313.pyc", "src/bookshelf/cli.py",
        "src/bookshelf/migrations/versions/2025_02_01_create_book.py",
        "pyproject.toml", "uv.lock", "README.md", "Dockerfile", ".dockerignore",
    ]  # fmt: skip
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".dockerignore").write_text((REPO / ".dockerignore").read_text())
    sent = set(_image.exclude_paths(str(tmp_path), _image.dockerignore_patterns(tmp_path)))
    sent_files = {p for p in sent if (tmp_path / p).is_file()}
    assert sent_files == {
        "src/bookshelf/cli.py",
        "src/bookshelf/migrations/versions/2025_02_01_create_book.py",
        "pyproject.toml", "uv.lock", "README.md", "Dockerfile", ".dockerignore",
    }  # fmt: skip


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_locked_runtime_dependencies_have_wheels_for_both_fargate_platforms(
    dockerfile: Dockerfile, machine: str
) -> None:
    match = IMAGE_PYTHON.match(dockerfile.runtime.base)
    assert match
    python = f"{match[1]}.{match[2]}"
    environment = {
        "python_version": python, "python_full_version": f"{python}.0",
        "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
        "platform_machine": machine, "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }  # fmt: skip
    lock = _image.read_lock()
    cpython = f"cp{match[1]}{match[2]}"
    # The slim image has no compiler: every package needs a wheel that fits.
    missing = [
        name
        for name in _image.runtime_closure(lock, environment)
        if name != "bookshelf"
        and not any(_fits(w["url"], cpython, machine) for w in lock[name].get("wheels", []))
    ]
    assert not missing, f"no {machine} wheel for Python {python}: {missing}"


def _fits(url: str, cpython: str, machine: str) -> bool:
    python_tag, abi, platform = url.rsplit("/", 1)[1].removesuffix(".whl").split("-")[-3:]
    pure = platform == "any" and (python_tag.startswith("py3") or cpython in python_tag)
    built = cpython in python_tag.split(".") or abi == "abi3"
    glibc = any(p.startswith("manylinux") and p.endswith(machine) for p in platform.split("."))
    return pure or (built and glibc)


def test_compose_runs_the_image_with_the_task_contract() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    app, db = compose["services"]["app"], compose["services"]["db"]
    assert app["build"] == "."
    assert db["image"].startswith("postgres:16")
    (volume,) = db["volumes"]
    assert volume.split(":")[0] in compose["volumes"], "the data lives in a named volume"
    awkward = {"POSTGRES_PASSWORD": 'p"w\\ @:/%#?'}
    env = {key: _interpolate(str(value), awkward) for key, value in app["environment"].items()}
    task = set(contract.TASK_ENVIRONMENT) | set(contract.TASK_SECRETS)
    assert set(env) == task | {contract.DB_PASSWORD}
    assert app["ports"] == [f"127.0.0.1:{contract.CONTAINER_PORT}:{contract.CONTAINER_PORT}"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    settings = Settings(**{key.lower(): value for key, value in env.items()})
    params = settings.db_params()
    assert (params.host, params.user) == ("db", db["environment"]["POSTGRES_USER"])
    assert params.password == _interpolate(db["environment"]["POSTGRES_PASSWORD"], awkward)
    assert params.password == awkward["POSTGRES_PASSWORD"]


def _interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's `${NAME:-default}`: the shell's value, else the default."""
    return re.sub(r"\$\{([A-Z_]+):-([^}]*)\}", lambda m: shell.get(m[1], m[2]), value)


# ---- the replayed image


@pytest.fixture(scope="module")
def image(dockerfile: Dockerfile) -> Iterator[Image]:
    uv = Path(os.environ.get("UV") or REPO / ".tools" / "bin" / "uv")
    for workdir in _image.temporary_world_readable_dir():
        yield _image.replay(dockerfile, workdir, uv)


def test_image_installs_exactly_the_locked_runtime_dependencies(image: Image) -> None:
    lock = _image.read_lock()
    expected = _image.runtime_closure(lock)
    assert _image.installed(image) == expected
    for group, members in _image.group_members(lock).items():
        assert not (members - set(expected)) & set(_image.installed(image)), group


def test_image_holds_the_app_as_a_compiled_wheel_with_its_migrations(image: Image) -> None:
    assert sorted(p.name for p in (image.root / "/app").iterdir()) == [".venv"]
    package = Path(image.python("import bookshelf; print(bookshelf.__file__)").strip()).parent
    assert package.is_relative_to(image.venv), "installed, not an editable link to src/"
    assert list((package / "migrations" / "versions").glob("*.py"))
    compiled = {p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc")}
    assert {p.stem for p in package.glob("*.py")} <= compiled
    assert not (image.venv / "bin" / "pip").exists()


def test_lock_covers_every_runtime_import(image: Image) -> None:
    # Every module imports in the image's isolated interpreter (migrations run in the
    # server test: their env.py only imports under Alembic).
    image.python(
        "import importlib, pkgutil, bookshelf\n"
        "for m in pkgutil.walk_packages(bookshelf.__path__, 'bookshelf.'):\n"
        "    if not m.name.startswith('bookshelf.migrations.'): importlib.import_module(m.name)\n"
    )
    # And every import anywhere (lazy ones too) resolves there, but the embedded server's.
    dev_only = {"pgserver"}  # `bookshelf dev` only; imported lazily in bookshelf.embedded
    names = {name for path in (REPO / "src").rglob("*.py") for name in _top_level_imports(path)}
    third_party = sorted(names - set(sys.stdlib_module_names) - {"bookshelf"} - dev_only)
    image.python(f"import importlib; [importlib.import_module(n) for n in {third_party!r}]")


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


# ---- the replayed image, running as ECS runs it


@dataclass
class AppDatabase:
    host: str
    name: str

    def secret(self) -> str:
        """The JSON of an RDS-generated Secrets Manager secret."""
        return json.dumps(
            {
                "engine": "postgres",
                "host": self.host,
                "port": 5432,
                "dbname": self.name,
                "username": APP_ROLE,
                "password": AWKWARD_PASSWORD,
                "dbInstanceIdentifier": "bookshelf-db",
            }
        )


@pytest.fixture(scope="module")
async def app_database(postgres: Postgres, image: Image) -> AsyncIterator[AppDatabase]:
    """A role with the awkward password, allowed in only by scram-sha-256, and its database."""
    admin = await asyncpg.connect(**postgres.admin().connect_kwargs())
    literal = "'" + AWKWARD_PASSWORD.replace("'", "''") + "'"
    await admin.execute("SET password_encryption = 'scram-sha-256'")
    await admin.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD {literal}")
    await admin.execute(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_ROLE}")
    hba = postgres.pgdata / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"local all {APP_ROLE} scram-sha-256\n{original}")
    # pg_reload_conf(), not pg_ctl reload: pg_ctl runs as pgserver's system user, which
    # cannot reach pytest's 0700 temporary directory when the tests run as root.
    await admin.execute("SELECT pg_reload_conf()")
    with _relay.relay(postgres.socket_dir, image.root.path.parent / "pg") as socket_dir:
        database = AppDatabase(socket_dir, APP_DATABASE)
        await _assert_password_is_required(database)
        yield database
    hba.write_text(original)
    await admin.execute("SELECT pg_reload_conf()")
    await admin.execute(f"DROP DATABASE {APP_DATABASE} WITH (FORCE)")
    await admin.execute(f"DROP ROLE {APP_ROLE}")
    await admin.close()


async def _assert_password_is_required(database: AppDatabase) -> None:
    deadline = time.monotonic() + 10  # the reload is asynchronous
    while True:
        try:
            conn = await asyncpg.connect(
                host=database.host, database=database.name, user=APP_ROLE, password="wrong"
            )
        except asyncpg.InvalidPasswordError:
            return
        await conn.close()
        assert time.monotonic() < deadline, "pg_hba.conf change not in force"
        await asyncio.sleep(0.1)


def task_environment(database: AppDatabase, port: int, workers: int) -> dict[str, str]:
    """What the ECS task definition sets: environment, then secrets (all names from contract)."""
    environment = {
        contract.DB_HOST: database.host,
        contract.DB_PORT: "5432",
        contract.DB_NAME: database.name,
        contract.DB_SSLMODE: "disable",  # TLS off locally; the AWS task sets "require"
        contract.MIGRATE_ON_START: "true",
        contract.PORT: str(port),
        contract.WORKERS: str(workers),
        contract.FORWARDED_ALLOW_IPS: "127.0.0.0/8",  # the "VPC" here is loopback
    }
    secrets = {contract.DB_SECRET: database.secret(), contract.API_KEYS: API_KEY}
    assert set(environment) == set(contract.TASK_ENVIRONMENT)
    assert set(secrets) == set(contract.TASK_SECRETS)
    return {**environment, **secrets}


def _image_user(image: Image) -> dict[str, Any]:
    """Popen arguments that run as the image's USER (when we may switch users)."""
    if os.geteuid() != 0:
        return {}
    uid, _, gid = image.dockerfile.runtime.one("USER").value.partition(":")
    return {"user": int(uid), "group": int(gid), "extra_groups": []}


def start_image(image: Image, database: AppDatabase, workers: int) -> LiveServer:
    port = free_port()
    # A container starts with the image's ENV plus the task's, and nothing of ours.
    env = image.env(HOME="/nonexistent", **task_environment(database, port, workers))
    log = image.root.path.parent / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            image.command,
            env=env,
            cwd=image.root / image.dockerfile.runtime.one("WORKDIR").value,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so LiveServer.stop can end the workers too
            **_image_user(image),
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_ready(server, timeout=60)
    except BaseException:
        server.stop()
        raise
    return server


def run_healthcheck(image: Image, server: LiveServer) -> int:
    port = server.url.rsplit(":", 1)[1]
    env = image.env(HOME="/nonexistent", **{contract.PORT: port})
    argv = image.healthcheck
    return subprocess.run(argv, env=env, timeout=5, **_image_user(image)).returncode


@pytest.fixture(scope="module")
def image_server(image: Image, app_database: AppDatabase) -> Iterator[LiveServer]:
    server = start_image(image, app_database, workers=2)
    try:
        yield server
    finally:
        server.stop()


def test_server_is_the_process_started_not_a_shell(image: Image, image_server: LiveServer) -> None:
    pid = image_server.process.pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert Path(argv[0].decode()).name.startswith("python"), argv
    assert Path(os.readlink(f"/proc/{pid}/exe")).name.startswith("python")
    assert [a.decode() for a in argv[1:3]] == [*image.command[:1], "serve"]
    if os.geteuid() == 0:
        assert Path(f"/proc/{pid}").stat().st_uid != 0, "runs as the image's non-root user"


def test_ready_then_a_book_is_created_and_read(image_server: LiveServer) -> None:
    url = image_server.url
    assert httpx.get(url + contract.READY_PATH).status_code == 200
    headers = {"Authorization": f"Bearer {API_KEY}"}
    book = {"name": "Kindred", "author": "Octavia E. Butler"}
    created = httpx.post(url + "/books", json=book, headers=headers)
    assert created.status_code == 201, created.text
    fetched = httpx.get(url + created.headers["Location"])
    assert fetched.status_code == 200 and fetched.json()["name"] == "Kindred"


def test_healthcheck_command_succeeds(image: Image, image_server: LiveServer) -> None:
    assert run_healthcheck(image, image_server) == 0


def test_proxy_headers_are_trusted_from_the_configured_cidr(image_server: LiveServer) -> None:
    # The slash redirect is built from the scheme uvicorn took from X-Forwarded-Proto.
    response = httpx.get(image_server.url + "/books/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 307
    assert response.headers["Location"].startswith("https://")


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_a_slow_request_finish_and_exits_0(
    image: Image, app_database: AppDatabase, postgres: Postgres, workers: int
) -> None:
    server = start_image(image, app_database, workers)
    try:
        await _sigterm_during_a_slow_request(image, server, postgres, app_database, workers)
    finally:
        server.stop()


async def _sigterm_during_a_slow_request(
    image: Image, server: LiveServer, postgres: Postgres, app_database: AppDatabase, workers: int
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    book = {"name": f"Parable of the Sower, {workers}", "author": "Octavia E. Butler"}
    created = httpx.post(server.url + "/books", json=book, headers=headers).json()
    lock = await asyncpg.connect(**postgres.admin(app_database.name).connect_kwargs())
    try:
        transaction = lock.transaction()
        await transaction.start()
        await lock.execute("SELECT 1 FROM book WHERE id = $1 FOR UPDATE", created["id"])
        patch = asyncio.create_task(
            asyncio.to_thread(
                httpx.patch,
                f"{server.url}/books/{created['id']}",
                json={"name": f"Parable of the Talents, {workers}"},
                headers=headers,
                timeout=contract.DRAIN_SECONDS,
            )
        )
        await _wait_for_lock_waiter(lock, app_database.name)
        server.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        await asyncio.sleep(1)
        assert server.process.poll() is None, "exited with a request in flight"
        await transaction.rollback()
        response = await patch
    finally:
        await lock.close()
    assert response.status_code == 200, response.text
    assert response.json()["name"] == f"Parable of the Talents, {workers}"
    output = await asyncio.to_thread(server.output)
    assert server.process.returncode == 0, output
    assert time.monotonic() - stopped < contract.DRAIN_SECONDS
    assert run_healthcheck(image, server) != 0, "the healthcheck fails once the server is gone"


async def _wait_for_lock_waiter(conn: asyncpg.Connection, database: str) -> None:
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'"
    deadline = time.monotonic() + 30  # generous: CI machines are often loaded
    while await conn.fetchval(query, database) == 0:
        assert time.monotonic() < deadline, "the PATCH never reached the locked row"
        await asyncio.sleep(0.05)
