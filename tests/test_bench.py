"""The benchmark's servers start the way `make bench` starts them. (A run needs wrk and
minutes; this only proves that `make bench` would not fail at its first step.)"""

from pathlib import Path

import pytest

from bench import run as bench
from bookshelf.config import DbParams


@pytest.mark.parametrize("name", ["ours", "hello"])
def test_bench_server_starts_ready_and_stops_cleanly(
    name: str, db_params: DbParams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "WORK", tmp_path)
    target = bench.Target(name)
    try:
        assert target.start(db_params) < 30
        assert target.answers()
    finally:
        target.stop()
    assert target.process is not None
    assert target.process.returncode == 0
