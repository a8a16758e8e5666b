"""`bookshelf import FILE`: send a catalogue file to a running service, in batches.

The file is read and mapped by `catalogue`, then posted to `POST /books/import` batch by
batch. Progress goes to stderr (a bar on a terminal, plain lines otherwise), the summary to
stdout. Exit codes: 0 when every row was sent (invalid rows included), 1 when the service
refused a batch or could not be reached, 2 when the file cannot be read or has no known format.
"""

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import orjson

from bookshelf.catalogue import Catalogue, CatalogueError, Entry, read_catalogue

DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 1000  # what POST /books/import accepts (bulk.MAX_BATCH_SIZE; a test checks)
API_KEY_ENV = "BOOKSHELF_API_KEY"
SHOWN_INVALID = 10
TIMEOUT_SECONDS = 60.0
RETRIES = 3  # per batch, on 503 and 409 (see _post)
MAX_RETRY_AFTER_SECONDS = 10.0
_TOO_LARGE = {
    "field": "",
    "message": "the row alone is larger than the service accepts in one request",
    "type": "row_too_large",
}


class ServiceError(Exception):
    """The service refused a batch or could not be reached."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="Goodreads export, CSV or JSON Lines file")
    parser.add_argument(
        "--url", help="the service (default: http://127.0.0.1:$BOOKSHELF_PORT, port 8000 unset)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"key for writes (default: ${API_KEY_ENV}, singular: one of the server's "
        "BOOKSHELF_API_KEYS)",
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"books per request, 1 to {MAX_BATCH_SIZE} (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and report without calling the service"
    )


def _batch_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}")
    return size


@dataclass
class Tally:
    """Outcomes so far, and the first invalid rows with their reasons."""

    created: int = 0
    duplicates: int = 0
    invalid: int = 0
    valid: int = 0  # dry runs only: valid, but not sent
    first_invalid: list[tuple[Entry, list[dict[str, Any]]]] = field(default_factory=list)

    def add(self, entry: Entry, result: dict[str, Any]) -> None:
        status = result["status"]
        if status == "created":
            self.created += 1
        elif status == "duplicate":
            self.duplicates += 1
        elif status == "valid":
            self.valid += 1
        else:
            self.invalid += 1
            if len(self.first_invalid) < SHOWN_INVALID:
                self.first_invalid.append((entry, result["errors"]))


class Progress:
    """Rows done, rate and ETA: a bar redrawn in place on a terminal, else a line a second."""

    WIDTH = 30

    def __init__(
        self, total: int, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.stream = stream
        self.clock = clock
        self.tty = stream.isatty()
        self.started = clock()
        self.last_line = -1.0

    def update(self, done: int) -> None:
        now = self.clock()
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - done) / rate:.0f}s" if rate else "?"
        figures = f"{done}/{self.total} rows  {rate:,.0f} rows/s  ETA {eta}"
        if self.tty:
            filled = self.WIDTH * done // max(self.total, 1)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {figures}  ")
        elif now - self.last_line >= 1 or done == self.total:
            self.stream.write(f"progress: {figures}\n")
            self.last_line = now
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: tests replace them
    try:
        catalogue = read_catalogue(args.file)
    except CatalogueError as exc:
        print(f"bookshelf import: {exc}", file=err)
        return 2
    tally = Tally()
    progress = Progress(len(catalogue.entries), err)
    code = 0
    try:
        if args.dry_run:
            _check(catalogue.entries, args.batch_size, tally, progress)
        else:
            _send(catalogue.entries, args, tally, progress)
    except ServiceError as exc:
        progress.finish()
        print(f"bookshelf import: {exc}", file=err)
        code = 1
    else:
        progress.finish()
    _summarise(args.file, catalogue, tally, args.dry_run, out)
    if code:
        accounted = tally.created + tally.duplicates + tally.invalid
        unsent = len(catalogue.entries) - accounted
        print(
            f"Stopped: {unsent} of {len(catalogue.entries)} rows got no outcome, so the counts "
            "above are partial. Rows sent before the failure are stored; importing again is safe.",
            file=out,
        )
    return code


def _batches(entries: list[Entry], size: int) -> list[list[Entry]]:
    return [entries[start : start + size] for start in range(0, len(entries), size)]


def _check(entries: list[Entry], size: int, tally: Tally, progress: Progress) -> None:
    done = 0
    for batch in _batches(entries, size):
        for entry in batch:
            tally.add(entry, validate(entry))
        done += len(batch)
        progress.update(done)


def validate(entry: Entry) -> dict[str, Any]:
    """What the service would say about the row's fields, without asking it."""
    # Imported here: the server's schemas pull in pydantic and FastAPI, which only dry runs
    # and unreadable rows need; `bookshelf` starts faster without them.
    from pydantic import ValidationError

    from bookshelf.errors import field_errors
    from bookshelf.schemas import BookCreate

    if entry.errors:
        return {"status": "invalid", "errors": entry.errors}
    try:
        BookCreate.model_validate(entry.book)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_input=False, include_url=False))
        return {"status": "invalid", "errors": errors}
    return {"status": "valid"}


def _send(entries: list[Entry], args: argparse.Namespace, tally: Tally, progress: Progress) -> None:
    # httpx logs every request at INFO, which would interleave with the summary.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    done = 0
    try:
        client = httpx.Client(base_url=args.url, headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.InvalidURL as exc:
        raise ServiceError(f"--url {args.url!r} is not a URL: {exc}") from None
    with client:
        for batch in _batches(entries, args.batch_size):
            # Rows the file itself made unreadable are reported without a round trip.
            readable = [entry for entry in batch if not entry.errors]
            for entry in batch:
                if entry.errors:
                    tally.add(entry, validate(entry))
            for entry, result in zip(readable, _post(client, readable), strict=True):
                tally.add(entry, result)
            done += len(batch)
            progress.update(done)


def _post(client: httpx.Client, entries: list[Entry]) -> list[dict[str, Any]]:
    if not entries:
        return []
    body = orjson.dumps([entry.book for entry in entries])
    for attempt in range(1 + RETRIES):
        try:
            response = client.post(
                "/books/import", content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the service at {client.base_url}: {exc}") from None
        # 503: the database is away for a moment; 409: the batch lost a deadlock with another
        # write and stored nothing. Sending the batch again is safe either way: rows a lost
        # answer did store come back as duplicates.
        if response.status_code not in (409, 503) or attempt == RETRIES:
            break
        time.sleep(_retry_after(response))
    if response.status_code == 413:
        # The batch is over the server's body limit (long fields): halve it until it fits.
        # A single row that does not fit is itself invalid; the rows around it go on.
        if len(entries) == 1:
            return [{"status": "invalid", "errors": [_TOO_LARGE]}]
        half = len(entries) // 2
        return _post(client, entries[:half]) + _post(client, entries[half:])
    if response.status_code != 200:
        raise ServiceError(f"the service refused a batch: {_describe(response)}")
    try:
        results: list[dict[str, Any]] = response.json()["results"]
    except (ValueError, KeyError, TypeError):
        # A proxy's login page or another service at that address.
        raise ServiceError(
            f"{client.base_url} answered 200 without an import report; is --url this service?"
        ) from None
    return results


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", 1))
    except ValueError:
        seconds = 1.0
    if not math.isfinite(seconds):  # "nan", "inf": not a delay
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _describe(response: httpx.Response) -> str:
    try:
        problem = response.json()
        reason = f"{problem['title']}: {problem['detail']}"
    except (ValueError, KeyError, TypeError):
        reason = response.reason_phrase
    return f"{response.status_code} {reason}"


def _summarise(path: Path, catalogue: Catalogue, tally: Tally, dry_run: bool, out: TextIO) -> None:
    rows = len(catalogue.entries)
    print(f"{path}: {catalogue.kind}, {rows} rows", file=out)
    if dry_run:
        print(f"  valid       {tally.valid:>6}  (dry run: nothing was sent)", file=out)
    else:
        print(f"  created     {tally.created:>6}", file=out)
        print(f"  duplicates  {tally.duplicates:>6}", file=out)
    print(f"  invalid     {tally.invalid:>6}", file=out)
    if tally.first_invalid:
        print("First invalid rows:", file=out)
        for entry, errors in tally.first_invalid:
            print(f"  {_describe_row(entry, errors)}", file=out)
        if tally.invalid > len(tally.first_invalid):
            print(f"  ... and {tally.invalid - len(tally.first_invalid)} more", file=out)


def _describe_row(entry: Entry, errors: list[dict[str, Any]]) -> str:
    title = entry.book.get("name")
    named = f" ({title!r})" if isinstance(title, str) and title else ""
    reasons = "; ".join(
        f"{error['field']}: {error['message']}" if error["field"] else error["message"]
        for error in errors
    )
    return f"line {entry.line}{named}: {reasons}"
