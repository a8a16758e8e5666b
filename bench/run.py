"""`make bench`: our service against the tutorial's app, the framework ceiling (hello-world)
and the database ceiling (pgbench), in one run, on this machine, over loopback.

Steps: a fresh embedded PostgreSQL 18 -> migrate and seed 10,000 books in two databases ->
pgbench -> start the three servers (cold start and idle memory measured on the way) ->
for every workload and concurrency, the three targets back to back (warm-up, then a fixed
run) -> table on stdout, bench/results/<date>_<sha>.json and .png.

Settings (environment): BENCH_DURATION (s per run, default 5), BENCH_WARMUP (s, default 1),
BENCH_CONCURRENCY (default "1,16,64"), BENCH_WORKLOADS (default all), BENCH_TARGETS
(default "ours,tutorial,hello"), BENCH_COLD_STARTS (default 3).
"""

import asyncio
import compileall
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report, seed  # noqa: E402
from bookshelf.config import DbParams  # noqa: E402

BENCH = ROOT / "bench"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
LUA = BENCH / "wrk" / "workload.lua"
TUTORIAL_DIR = BENCH / "reference" / "tutorial"
API_KEY = "bench-key-0123456789abcdef"

WORKLOADS = ("get_by_id", "by_name", "search", "create", "update")
TARGETS = ("ours", "tutorial", "hello")


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name, "")
    return tuple(x.strip() for x in raw.split(",") if x.strip()) or default


@dataclass(frozen=True)
class Config:
    duration: int = int(os.environ.get("BENCH_DURATION", "5"))
    warmup: int = int(os.environ.get("BENCH_WARMUP", "1"))
    concurrency: tuple[int, ...] = tuple(
        int(c) for c in _env_list("BENCH_CONCURRENCY", ("1", "16", "64"))
    )
    workloads: tuple[str, ...] = _env_list("BENCH_WORKLOADS", WORKLOADS)
    targets: tuple[str, ...] = _env_list("BENCH_TARGETS", TARGETS)
    cold_starts: int = int(os.environ.get("BENCH_COLD_STARTS", "3"))


# --- PostgreSQL ---------------------------------------------------------------------------


def start_postgres() -> tuple[Any, DbParams]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import pgserver
    pgdata = WORK / "pgdata"
    shutil.rmtree(pgdata, ignore_errors=True)
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    server.psql("CREATE DATABASE bookshelf; CREATE DATABASE tutorial;")
    global POSTMASTER_PID
    POSTMASTER_PID = int(server.get_pid())
    return server, DbParams(socket_dir, 5432, "bookshelf", "postgres", None, "disable")


POSTMASTER_PID = 0


def postgres_cpu_seconds() -> float:
    """CPU of our PostgreSQL's processes (pooled backends live through a run, so deltas hold)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        master = psutil.Process(POSTMASTER_PID)
        for proc in [master, *master.children()]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def tutorial_url(params: DbParams) -> str:
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the tutorial means psycopg2.
    return f"postgresql+psycopg2://{params.user}@/tutorial?host={params.host}&port={params.port}"


def prepare_databases(params: DbParams, books: list[seed.Book]) -> None:
    # Migrate as operators do: `bookshelf migrate`, configured by DB_* like the container.
    subprocess.run(
        [str(Path(sys.executable).parent / "bookshelf"), "migrate"],
        env={**_clean_env(), **_db_env(params)},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # The tutorial makes its table itself (Base.metadata.create_all at import): let it.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import database, models; models.Base.metadata.create_all(database.engine)",
        ],
        cwd=TUTORIAL_DIR,
        env={**os.environ, "SQLALCHEMY_DATABASE_URL": tutorial_url(params)},
        check=True,
    )

    async def load() -> None:
        ours = await asyncpg.connect(**params.connect_kwargs())
        tutorial = await asyncpg.connect(**{**params.connect_kwargs(), "database": "tutorial"})
        try:
            await seed.seed_ours(ours, books)
            await seed.seed_tutorial(tutorial, books)
        finally:
            await ours.close()
            await tutorial.close()

    asyncio.run(load())


# --- pgbench (the database ceiling) --------------------------------------------------------

_COLUMNS = (
    "id, name, author, isbn, publisher, published_year, pages, created_at, updated_at, version"
)
PGBENCH_SCRIPTS = {
    # The service's lookup statement, verbatim. pgbench cannot draw a name from a list, so each
    # transaction first fetches a random seeded name by id (a primary-key hit, cheaper still).
    "by_name": f"""\\set id random(1, {seed.BOOKS})
SELECT name AS n FROM book WHERE id = :id \\gset
SELECT {_COLUMNS} FROM book WHERE lower(name) = lower(:n) ORDER BY id LIMIT 21;
""",
    # The service's insert statement, with a random unique name.
    "create": f"""\\set n random(1, 1000000000000)
INSERT INTO book (name, author, isbn, publisher, published_year, pages)
VALUES ('Pgbench Volume ' || :n::text, 'Pgbench Author', NULL, 'Load Press', 1999, 321)
ON CONFLICT DO NOTHING RETURNING {_COLUMNS};
""",
}


def pgbench_binary() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    bundled = Path(POSTGRES_BIN_PATH) / "pgbench"
    return str(bundled) if bundled.exists() else (shutil.which("pgbench") or "pgbench")


def run_pgbench(params: DbParams, cfg: Config) -> list[dict[str, Any]]:
    results = []
    for workload, script in PGBENCH_SCRIPTS.items():
        path = WORK / f"pgbench_{workload}.sql"
        path.write_text(script)
        for clients in cfg.concurrency:
            base = [pgbench_binary(), "-h", params.host, "-p", str(params.port), "-U", params.user]
            base += ["-n", "-M", "prepared", "-j", "1", "-c", str(clients), "-f", str(path)]
            subprocess.run(
                [*base, "-T", str(max(cfg.warmup, 1)), params.database],
                capture_output=True,
                check=True,
            )
            out = subprocess.run(
                [*base, "-T", str(cfg.duration), params.database],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
            latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))  # type: ignore[union-attr]
            failed = re.search(r"number of failed transactions: (\d+)", out)
            results.append(
                {
                    "workload": workload,
                    "concurrency": clients,
                    "tps": round(tps, 1),
                    "latency_avg_ms": latency,
                    "failed": int(failed.group(1)) if failed else 0,
                }
            )
            print(
                f"  pgbench {workload:9} c={clients:<3} {tps:9.0f} tps  {latency:6.2f} ms avg",
                flush=True,
            )
    return results


# --- Servers ------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "BOOKSHELF_", "DATABASE_URL"))
    }


def _db_env(params: DbParams) -> dict[str, str]:
    return {
        "DB_HOST": params.host,
        "DB_PORT": str(params.port),
        "DB_NAME": params.database,
        "DB_USER": params.user,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    name: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_path(self) -> str:
        # The tutorial has no readiness route; its first served book is the equivalent.
        return "/books/1" if self.name == "tutorial" else "/health/ready"

    def command(self, params: DbParams) -> tuple[list[str], dict[str, str], Path]:
        bindir = Path(sys.executable).parent
        env = _clean_env()
        if self.name == "ours":
            # The container's command, `bookshelf serve`, with its environment; workers are
            # left to the default (one per CPU), as in the container.
            env |= _db_env(params) | {
                "BOOKSHELF_API_KEYS": API_KEY,
                "BOOKSHELF_HOST": "127.0.0.1",
                "BOOKSHELF_PORT": str(self.port),
            }
            return [str(bindir / "bookshelf"), "serve"], env, ROOT
        if self.name == "hello":
            # The same runner checks the database settings at start; the app never uses them.
            env |= _db_env(params) | {
                "BOOKSHELF_HOST": "127.0.0.1",
                "BOOKSHELF_PORT": str(self.port),
            }
            return [sys.executable, "-m", "bench.reference.serve_hello"], env, ROOT
        # The tutorial: `uvicorn main:app`, defaults; only the port differs.
        env |= {"SQLALCHEMY_DATABASE_URL": tutorial_url(params)}
        return [str(bindir / "uvicorn"), "main:app", "--port", str(self.port)], env, TUTORIAL_DIR

    def start(self, params: DbParams) -> float:
        """Start and wait until ready; returns seconds from spawn to the first 200."""
        argv, env, cwd = self.command(params)
        self.log = log = open(WORK / f"{self.name}.log", "ab")  # noqa: SIM115 - closed by stop()
        started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = started + 30
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {log.name}"
                )
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            time.sleep(0.005)
        raise RuntimeError(f"{self.name} not ready after 30 s; see {log.name}")

    def stop(self, grace: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                for proc in self.processes():
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()

    def answers(self) -> bool:
        """Does the server still answer a plain request within wrk's own timeout?"""
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def processes(self) -> list[psutil.Process]:
        assert self.process is not None
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def workers(self) -> list[psutil.Process]:
        """Processes that serve requests: the children of uvicorn's supervisor, else itself."""
        procs = self.processes()
        serving = [p for p in procs[1:] if "resource_tracker" not in " ".join(p.cmdline())]
        return serving or procs[:1]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def memory(self) -> dict[str, Any]:
        workers = []
        for proc in self.workers():
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                workers.append({"pid": proc.pid, "rss_mb": _mb(info.rss), "uss_mb": _mb(info.uss)})
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return {"total_rss_mb": _mb(total), "workers": workers}


def _mb(n: int) -> float:
    return round(n / 2**20, 1)


def cold_starts(target: Target, params: DbParams, times: int) -> dict[str, Any]:
    """Start `times` times (the last start stays up for the load); idle memory after it."""
    seconds = []
    for attempt in range(times):
        seconds.append(target.start(params))
        if attempt < times - 1:
            target.stop()
    time.sleep(1)  # let start-up settle before reading idle memory
    result = {
        "cold_start_s": [round(s, 3) for s in seconds],
        "cold_start_median_s": round(statistics.median(seconds), 3),
    }
    result["idle"] = target.memory()
    return result


# --- wrk ----------------------------------------------------------------------------------


def wrk(
    target: Target, workload: str, connections: int, seconds: int, prefix: str
) -> dict[str, Any]:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        target.url,
    ]
    argv += [
        "--",
        workload,
        target.name,
        prefix,
        str(WORK / "inputs"),
        API_KEY if target.name == "ours" else "",
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    out = done.stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    return dict(json.loads(line.removeprefix("BENCH_JSON ")))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: Target, workload: str, connections: int, cfg: Config, run_id: str, params: DbParams
) -> dict[str, Any]:
    result = _measure(target, workload, connections, cfg, run_id)
    if result["stalled"]:
        # A server that stops answering (the tutorial's pool of 15 connections under 64
        # clients) would make every later run of it read 0 req/s and 0 errors: restart it.
        print(f"  {target.name} stalled: restarting it for the next run", flush=True)
        target.stop(grace=5)
        target.start(params)
    return result


def _measure(
    target: Target, workload: str, connections: int, cfg: Config, run_id: str
) -> dict[str, Any]:
    wrk(target, workload, connections, cfg.warmup, f"W{run_id}")
    cpu0, pg0, wrk0, t0 = (
        target.cpu_seconds(),
        postgres_cpu_seconds(),
        _children_cpu(),
        time.perf_counter(),
    )
    raw = wrk(target, workload, connections, cfg.duration, f"M{run_id}")
    wall = time.perf_counter() - t0
    cpu1, pg1, wrk1 = target.cpu_seconds(), postgres_cpu_seconds(), _children_cpu()
    # wrk counts a timeout only on its 2 s timer ticks, so a server that hangs for a whole short
    # run shows 0 requests and 0 errors. Such a run is "stalled", and every connection's
    # request was left unanswered: each one counts as an error.
    stalled = raw["requests"] == 0 or not target.answers()
    unanswered = connections if stalled else 0
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    errors += unanswered
    return {
        "workload": workload,
        "concurrency": connections,
        "target": target.name,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_detail": {
            **{k: raw[k] for k in ("non2xx", "statuses", "connect", "read", "write", "timeout")},
            "unanswered": unanswered,
        },
        "stalled": stalled,
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
        "wrk_cpu_pct": round(100 * (wrk1 - wrk0) / wall, 1),
        "postgres_cpu_pct": round(100 * (pg1 - pg0) / wall, 1),
        "server_rss_mb": target.memory()["total_rss_mb"],
    }


# --- Run ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    return {
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version.strip(),
    }


def git_sha() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "nogit"
    return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# Everything the three servers import; their packages are compiled whole (uvicorn and
# SQLAlchemy import more modules lazily), the rest of the venv (CDK, ...) is left alone.
_SERVER_IMPORTS = (
    "bookshelf.cli bookshelf.main bookshelf.migrate uvicorn.main uvloop httptools psycopg2 "
    "sqlalchemy.orm sqlalchemy.dialects.postgresql.psycopg2 bench.reference.serve_hello"
)


def compile_bytecode() -> None:
    """Write .pyc files as the image build does (uv's --compile-bytecode): without them every
    worker compiles FastAPI, pydantic and SQLAlchemy from source at start, and cold start
    measures the compiler (this shell sets PYTHONDONTWRITEBYTECODE, so nothing is cached)."""
    probe = (
        f"import importlib, sys\nfor m in {_SERVER_IMPORTS!r}.split(): importlib.import_module(m)\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    tops = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    purelib = Path(sysconfig.get_paths()["purelib"])
    paths = [ROOT / "src", BENCH]
    for name in tops.stdout.split():
        paths += [p for p in (purelib / name, purelib / f"{name}.py") if p.exists()]
    for path in paths:
        if path.is_dir():
            compileall.compile_dir(path, quiet=1, workers=0)
        else:
            compileall.compile_file(path, quiet=1)


def check_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed; see bench/README.md (apt-get install wrk)")


@contextlib.contextmanager
def running(targets: list[Target]) -> Iterator[None]:
    try:
        yield
    finally:
        for target in targets:
            target.stop()


def main() -> int:
    # Stop servers and PostgreSQL on SIGTERM too (the `finally` blocks only run on an exception).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    check_wrk()
    cfg = Config()
    compile_bytecode()
    WORK.mkdir(parents=True, exist_ok=True)
    for old in WORK.glob("*.log"):
        old.unlink()
    started = dt.datetime.now(dt.UTC)
    print(f"bench: {cfg}", flush=True)

    server, params = start_postgres()
    try:
        books = seed.books()
        seed.write_wrk_inputs(books, WORK / "inputs")
        prepare_databases(params, books)
        print(
            f"bench: PostgreSQL at {params.host}, {len(books)} books seeded in each database",
            flush=True,
        )
        pg_version = server.psql("SHOW server_version;").splitlines()[2].strip()
        pgbench = run_pgbench(params, cfg)
        targets = [Target(name) for name in cfg.targets]
        startup: dict[str, Any] = {}
        runs: list[dict[str, Any]] = []
        with running(targets):
            for target in targets:
                startup[target.name] = cold_starts(target, params, cfg.cold_starts)
                print(
                    f"  {target.name:8} ready in {startup[target.name]['cold_start_median_s']} s, "
                    f"idle {startup[target.name]['idle']}",
                    flush=True,
                )
            for workload in cfg.workloads:
                for connections in cfg.concurrency:
                    for target in targets:
                        run_id = f"{target.name[0]}{connections}"
                        result = measure(target, workload, connections, cfg, run_id, params)
                        runs.append(result)
                        print(report.progress_line(result), flush=True)
            for target in targets:
                startup[target.name]["after_load"] = target.memory()
    finally:
        server.cleanup()

    data = {
        "date": started.isoformat(timespec="seconds"),
        "sha": git_sha(),
        "machine": {**machine(), "postgresql": pg_version},
        "config": {
            "duration_s": cfg.duration,
            "warmup_s": cfg.warmup,
            "concurrency": list(cfg.concurrency),
            "wrk_threads": 1,
            "books": seed.BOOKS,
        },
        "startup": startup,
        "runs": runs,
        "pgbench": pgbench,
    }
    data["targets"] = report.check_targets(data)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started:%Y-%m-%d}_{data['sha']}.json"
    out.write_text(json.dumps(data, indent=1) + "\n")
    markdown = report.markdown(data)
    (WORK / "latest.md").write_text(markdown)
    print("\n" + markdown)
    chart = report.chart(data, out.with_suffix(".png"))
    print(f"bench: wrote {out.relative_to(ROOT)} and {chart.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
