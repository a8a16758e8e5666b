"""`bookshelf import` against the service over real HTTP: summaries, exit codes and progress.

The service runs under uvicorn in a thread of the test process: a `bookshelf serve`
subprocess would spend most of its start-up importing what this process already has.

The real Goodreads exports are read from tests/fixtures/goodreads (copies of
shared/data/goodreads), or from BOOKSHELF_GOODREADS_DIR. If they are missing the tests fail:
they are never skipped.
"""

import asyncio
import io
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import uvicorn

from bookshelf import bulk, cli, importer
from bookshelf.catalogue import read_catalogue
from bookshelf.config import DbParams, Settings
from bookshelf.importer import Progress
from bookshelf.main import create_app
from tests.conftest import API_KEY, Postgres, free_port, settings_for

FIXTURES = Path(__file__).parent / "fixtures"
CATALOGUES = FIXTURES / "catalogues"
ROWS_PER_EXPORT = 250


def goodreads_file(name: str) -> Path:
    directory = Path(os.environ.get("BOOKSHELF_GOODREADS_DIR", FIXTURES / "goodreads"))
    path = directory / name
    if not path.is_file():
        pytest.fail(f"{path} is missing; set BOOKSHELF_GOODREADS_DIR to the exports' folder")
    return path


@dataclass
class Service:
    url: str


@contextmanager
def serving(settings: Settings) -> Iterator[Service]:
    config = uvicorn.Config(
        create_app(settings),
        port=free_port(),
        ws="none",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield Service(f"http://127.0.0.1:{config.port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def service(settings: Settings) -> Iterator[Service]:
    with serving(settings) as running:
        yield running


@pytest.fixture(autouse=True)
def _test_owns_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # `cli.main` points the root logger at stdout; in-process, pytest's capture owns it.
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)


def run_import(
    capsys: pytest.CaptureFixture[str], server: Service | None, *args: str | Path
) -> tuple[int, str, str]:
    url = ["--url", server.url] if server else []
    code = cli.main(["import", *map(str, args), *url])
    out, err = capsys.readouterr()
    return code, out, err


def counts(summary: str) -> dict[str, int]:
    pattern = r"^  (created|duplicates|invalid|valid)\s+(\d+)"
    return {name: int(n) for name, n in re.findall(pattern, summary, re.MULTILINE)}


def stored_books(params: DbParams) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(**params.connect_kwargs())
        try:
            return int(await conn.fetchval("SELECT count(*) FROM book"))
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.mark.parametrize("name", ["library-a.csv", "library-b.csv"])
def test_import_goodreads_export_accounts_for_every_row(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams, name: str
) -> None:
    code, out, _ = run_import(capsys, service, goodreads_file(name), "--api-key", API_KEY)
    assert code == 0
    assert f"Goodreads export, {ROWS_PER_EXPORT} rows" in out
    outcome = counts(out)
    assert sum(outcome.values()) == ROWS_PER_EXPORT
    assert outcome["invalid"] == 0
    assert stored_books(db_params) == outcome["created"]


def test_import_same_file_twice_creates_nothing(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams
) -> None:
    library = goodreads_file("library-a.csv")
    run_import(capsys, service, library, "--api-key", API_KEY)
    code, out, _ = run_import(capsys, service, library, "--api-key", API_KEY)
    assert code == 0
    assert counts(out) == {"created": 0, "duplicates": ROWS_PER_EXPORT, "invalid": 0}


def test_import_overlapping_exports_stores_each_book_once(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams
) -> None:
    _, first, _ = run_import(capsys, service, goodreads_file("library-a.csv"), "--api-key", API_KEY)
    _, second, _ = run_import(
        capsys, service, goodreads_file("library-b.csv"), "--api-key", API_KEY
    )
    assert counts(second)["duplicates"] == 5  # the books both libraries hold
    assert stored_books(db_params) == counts(first)["created"] + counts(second)["created"]


def test_import_concurrently_overlapping_exports_never_duplicates(
    service: Service, db_params: DbParams
) -> None:
    """Three real `bookshelf import` processes at once: all succeed, each book stored once."""
    files = [goodreads_file(n) for n in ("library-a.csv", "library-b.csv", "library-a.csv")]
    env = {**os.environ, "BOOKSHELF_API_KEY": API_KEY}
    command = [sys.executable, "-m", "bookshelf.cli", "import", "--batch-size", "20"]
    processes = [
        subprocess.Popen(
            [*command, str(path), "--url", service.url], env=env, stdout=subprocess.PIPE, text=True
        )
        for path in files
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0]
    created = sum(counts(out)["created"] for out in outputs)
    assert created == stored_books(db_params) == 2 * ROWS_PER_EXPORT - 5


def test_import_reads_the_api_key_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    service: Service,
    db_params: DbParams,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKSHELF_API_KEY", API_KEY)
    code, out, _ = run_import(capsys, service, CATALOGUES / "goodreads-24-columns.csv")
    assert code == 0
    assert counts(out)["created"] == 3


def test_import_reports_the_first_invalid_rows_and_why(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams
) -> None:
    code, out, _ = run_import(
        capsys, service, CATALOGUES / "goodreads-isbn-quoting.csv", "--api-key", API_KEY
    )
    assert code == 0  # invalid rows are reported, not fatal
    assert counts(out) == {"created": 5, "duplicates": 0, "invalid": 1}
    assert "line 6 ('Bad ISBN13 Checksum'): isbn: Value error, ISBN-13 checksum" in out


def test_import_json_lines_counts_unreadable_lines_as_invalid(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams
) -> None:
    code, out, _ = run_import(capsys, service, CATALOGUES / "books.jsonl", "--api-key", API_KEY)
    assert code == 0
    assert counts(out) == {"created": 2, "duplicates": 0, "invalid": 3}
    assert "line 4: not valid JSON" in out
    assert "line 6 ('Pages As Text'): pages:" in out


def test_import_dry_run_validates_without_writing(
    capsys: pytest.CaptureFixture[str], db_params: DbParams
) -> None:
    # No --url: nothing listens on the default port in tests, and a dry run must not call it.
    code, out, _ = run_import(capsys, None, CATALOGUES / "plain.csv", "--dry-run")
    assert code == 0
    assert counts(out) == {"valid": 2, "invalid": 1}
    assert "dry run: nothing was sent" in out
    assert "line 4 ('A Book Without Pages'): pages: Input should be a valid integer" in out
    assert stored_books(db_params) == 0


def test_import_shows_at_most_ten_invalid_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = "".join(f"Book {i},Author,,,,{-i}\n" for i in range(1, 15))
    path = tmp_path / "bad-pages.csv"
    path.write_text(f"name,author,isbn,publisher,published_year,pages\n{rows}")
    code, out, _ = run_import(capsys, None, path, "--dry-run")
    assert code == 0
    assert out.count("pages: Input should be greater than or equal to 1") == 10
    assert "... and 4 more" in out


def test_import_prints_plain_progress_lines_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams
) -> None:
    library = goodreads_file("library-b.csv")
    _, out, err = run_import(capsys, service, library, "--api-key", API_KEY, "--batch-size", "100")
    assert "\r" not in err
    assert err.splitlines()[-1].startswith("progress: 250/250 rows")
    assert "progress" not in out  # stdout holds only the summary


def test_progress_on_a_terminal_redraws_a_bar_with_rate_and_eta() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    ticks = iter([100.0, 102.0, 104.0])
    progress = Progress(1000, stream, clock=lambda: next(ticks))
    progress.update(250)
    progress.update(500)
    progress.finish()
    first, second = stream.getvalue().split("\r")[1:]
    assert first.startswith("[#######-----------------------] 250/1000 rows  125 rows/s  ETA 6s")
    assert second.startswith("[###############---------------] 500/1000 rows  125 rows/s  ETA 4s")
    assert stream.getvalue().endswith("\n")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"Dear reader, this is a letter.\n", "no recognisable header"),
        ("Title,Author\nCaf\u00e9,X\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_import_unknown_format_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    service: Service,
    db_params: DbParams,
    tmp_path: Path,
    content: bytes,
    says: str,
) -> None:
    path = tmp_path / "catalogue.csv"
    path.write_bytes(content)
    code, out, err = run_import(capsys, service, path, "--api-key", API_KEY)
    assert code == 2
    assert says in err
    assert "expected a Goodreads library export" in err
    assert out == ""
    assert stored_books(db_params) == 0


def test_import_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_import(capsys, None, tmp_path / "nowhere.csv")
    assert code == 2
    assert "cannot read" in err


def test_import_unreachable_service_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_import(capsys, None, CATALOGUES / "plain.csv", "--url", url)
    assert code == 1
    assert f"cannot reach the service at {url}" in err
    assert "importing again is safe" in out


def test_import_without_url_sends_to_the_port_in_bookshelf_port(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    service: Service,
    db_params: DbParams,
) -> None:
    """It reaches the service that `BOOKSHELF_PORT=... make run` started, with no --url."""
    monkeypatch.setenv("BOOKSHELF_PORT", service.url.rsplit(":", 1)[1])
    code, out, _ = run_import(capsys, None, CATALOGUES / "plain.csv", "--api-key", API_KEY)
    assert code == 0
    assert counts(out)["created"] == stored_books(db_params) > 0


def test_import_waits_out_a_short_database_outage(
    capsys: pytest.CaptureFixture[str], service: Service, postgres: Postgres, db_params: DbParams
) -> None:
    """It sends a batch again after a 503, as Retry-After says, and finishes the file."""
    postgres.stop()
    restart = threading.Timer(1.0, postgres.start)
    restart.start()
    try:
        started = time.monotonic()
        code, out, _ = run_import(capsys, service, CATALOGUES / "plain.csv", "--api-key", API_KEY)
    finally:
        restart.join()
    assert code == 0
    assert counts(out)["created"] == stored_books(db_params) > 0
    assert time.monotonic() - started >= 1.0  # it did wait for the database


def test_import_refused_by_the_service_exits_1(
    capsys: pytest.CaptureFixture[str], service: Service, db_params: DbParams
) -> None:
    code, out, err = run_import(capsys, service, CATALOGUES / "plain.csv", "--api-key", "wrong-key")
    assert code == 1
    assert "the service refused a batch: 401 Unauthorized" in err
    rows = len(read_catalogue(CATALOGUES / "plain.csv").entries)
    assert re.search(rf"Stopped: \d+ of {rows} rows got no outcome", out), out
    assert stored_books(db_params) == 0


def test_import_batch_limit_matches_the_endpoint() -> None:
    assert importer.MAX_BATCH_SIZE == bulk.MAX_BOOKS


@pytest.mark.parametrize("size", ["0", "1001", "many"])
def test_import_refuses_a_batch_size_out_of_range(
    capsys: pytest.CaptureFixture[str], size: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["import", str(CATALOGUES / "plain.csv"), "--batch-size", size])
    assert exited.value.code == 2
    assert "--batch-size" in capsys.readouterr().err


def serving_small_bodies(db_params: DbParams) -> AbstractContextManager[Service]:
    """The service with a 4 KiB body limit, so a few long rows overflow one request."""
    small = settings_for(db_params, bookshelf_api_keys=API_KEY, bookshelf_max_body_bytes=4096)
    return serving(small)


def test_import_halves_batches_over_the_service_body_limit(
    capsys: pytest.CaptureFixture[str], db_params: DbParams, tmp_path: Path
) -> None:
    rows = "".join(f"{'Long title ' * 25}{i},Author {i}\n" for i in range(40))
    path = tmp_path / "long-titles.csv"
    path.write_text(f"name,author\n{rows}")
    with serving_small_bodies(db_params) as server:
        code, out, _ = run_import(capsys, server, path, "--api-key", API_KEY)
    assert code == 0
    assert counts(out)["created"] == 40


def test_import_reports_a_row_too_large_for_the_service_and_imports_the_rest(
    capsys: pytest.CaptureFixture[str], db_params: DbParams, tmp_path: Path
) -> None:
    path = tmp_path / "one-huge-row.csv"
    path.write_text(f"name,author\nBefore,A\n{'x' * 8000},B\nAfter,C\n")
    with serving_small_bodies(db_params) as server:
        code, out, _ = run_import(capsys, server, path, "--api-key", API_KEY)
    assert code == 0
    assert counts(out) == {"created": 2, "duplicates": 0, "invalid": 1}
    assert "line 3" in out and "larger than the service accepts" in out
    assert stored_books(db_params) == 2


def test_import_with_a_malformed_url_exits_1_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_import(capsys, None, CATALOGUES / "plain.csv", "--url", "http://[::1")
    assert code == 1
    assert "is not a URL" in err


def test_bookshelf_import_command_shows_progress_and_summary(
    service: Service, db_params: DbParams
) -> None:
    """The installed entry point, as `make import` runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "bookshelf.cli", "import", str(goodreads_file("library-a.csv"))]
        + ["--url", service.url, "--api-key", API_KEY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "progress: 250/250 rows" in result.stderr
    assert sum(counts(result.stdout).values()) == ROWS_PER_EXPORT
