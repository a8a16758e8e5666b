"""Reading catalogue files into book dicts for `POST /books/import`.

The format is detected from the file's first line, never from its name:

- a Goodreads library export (a header with `Book Id`, `Title` and `Author`, in any of its
  24-, 27- or 31-column variants, extra columns allowed);
- a plain CSV whose header names our fields (`name` or `title`, `author`, `isbn`,
  `publisher`, `published_year` or `year`, `pages`);
- JSON Lines, one object per line, with the same keys.

Only bibliographic columns are read. Goodreads' personal columns (ratings, shelves, reviews,
dates read, notes) never leave this module. Values are only tidied here (spacing, Goodreads'
`="..."` ISBN quoting, numbers); judging them is `BookCreate`'s job, on the server, so a bad
value is reported with the same message whichever way the book arrives.
"""

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

FIELDS = ("name", "author", "isbn", "publisher", "published_year", "pages")

EXPECTED = (
    "expected a Goodreads library export (a CSV whose header has Book Id, Title and Author), "
    "a comma-separated CSV with a header naming name (or title) and author, and optionally "
    "isbn, publisher, published_year (or year) and pages, or JSON Lines with those keys; "
    "UTF-8 encoded"
)

# Goodreads header → our field. ISBN13 is preferred over ISBN; see `_goodreads_book`.
_GOODREADS_COLUMNS = {
    "title": "name",
    "author": "author",
    "isbn13": "isbn13",
    "isbn": "isbn",
    "publisher": "publisher",
    "number of pages": "pages",
    "year published": "published_year",
}
_GOODREADS_SIGNATURE = {"book id", "title", "author"}
_PLAIN_ALIASES = {"title": "name", "year": "published_year"}
# Longer digit strings stay text, for validation to refuse: they are out of every range, and
# int() of thousands of digits is refused by Python and unsendable as JSON by orjson.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_SPACES = re.compile(r"\s+")

_Mapper = Callable[[dict[str, str]], dict[str, Any]]


class CatalogueError(Exception):
    """The file cannot be imported at all; the message says why and what was expected."""


@dataclass(frozen=True)
class Entry:
    """One row of the file: the book to send, or why the row could not even be read."""

    line: int
    book: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Catalogue:
    kind: str  # "Goodreads export", "CSV" or "JSON Lines"
    entries: list[Entry]


def read_catalogue(path: Path) -> Catalogue:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_catalogue(data, str(path))


def parse_catalogue(data: bytes, name: str = "the file") -> Catalogue:
    text = _decode(data, name)
    first = text.lstrip()[:1]
    if not first:
        raise CatalogueError(f"{name} is empty; {EXPECTED}")
    if first == "{":
        return Catalogue("JSON Lines", list(_json_lines(text, name)))
    return _csv(text, name)


def _decode(data: bytes, name: str) -> str:
    try:
        # utf-8-sig drops the byte-order mark that Excel and some Goodreads exports start with.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"{EXPECTED}"
        ) from None


def _csv(text: str, name: str) -> Catalogue:
    # newline="" keeps CRLF and newlines inside quoted fields for the csv module to handle;
    # skipinitialspace lets `a, "b, c"` (columns padded with spaces) parse as two fields.
    # No field can be longer than the file: a long review in a column we never read must not
    # refuse the file (the csv module's default limit is 128 KiB; it is process-wide).
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    # Not strict: strict refuses `"Title" ,` (a padded column). A stray quote is caught
    # after parsing instead (see `_joined_lines`).
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=False)
    # With no field limit and no strictness, the csv module raises nothing: text it cannot
    # make sense of ends as an unrecognised header or as invalid rows.
    header = [column.strip().casefold() for column in next(reader)]
    if _GOODREADS_SIGNATURE <= set(header):
        return Catalogue("Goodreads export", list(_rows(reader, header, _goodreads_book)))
    plain = [_PLAIN_ALIASES.get(column, column) for column in header]
    if {"name", "author"} <= set(plain):
        return Catalogue("CSV", list(_rows(reader, plain, _plain_book)))
    raise CatalogueError(f"{name} has no recognisable header; {EXPECTED}")


def _rows(reader: Any, header: list[str], to_book: _Mapper) -> Iterator[Entry]:
    while True:
        line = reader.line_num + 1  # where the record starts; it may span several lines
        try:
            values = next(reader)
        except StopIteration:
            return
        if not any(value.strip() for value in values):
            continue  # blank lines, including the trailing one
        row = dict(zip(header, values, strict=False))  # short rows: missing columns are empty
        errors = []
        if _joined_lines(values, len(header)):
            errors.append(
                _row_error(
                    f"an unbalanced quote seems to join lines {line}-{reader.line_num} into "
                    "one record; check the quotes there"
                )
            )
        yield Entry(line, to_book(row), errors)


def _joined_lines(values: list[str], columns: int) -> bool:
    """Does a field hold whole lines of the file? A stray `"` makes the csv module read on,
    through line ends, to the next quote: several rows become one field. A field with a
    line of its own as many commas as the header has separators is such a run."""
    return columns > 1 and any(
        "\n" in value and any(part.count(",") >= columns - 1 for part in value.splitlines())
        for value in values
    )


def _goodreads_book(row: dict[str, str]) -> dict[str, Any]:
    picked = {ours: row.get(theirs, "") for theirs, ours in _GOODREADS_COLUMNS.items()}
    # ISBN13 when present, else the ISBN-10. A bad checksum is reported, not replaced by the
    # other column: they may name different editions.
    picked["isbn"] = _unquote_isbn(picked.pop("isbn13")) or _unquote_isbn(picked["isbn"])
    return _tidy(picked)


def _plain_book(row: dict[str, str]) -> dict[str, Any]:
    picked = {key: value for key, value in row.items() if key in FIELDS}
    picked["isbn"] = _unquote_isbn(picked.get("isbn", ""))
    return _tidy(picked)


def _unquote_isbn(value: str) -> str:
    # Goodreads writes ISBNs as ="0451526538" (and empty ones as ="") so that spreadsheets
    # keep the leading zero; the CSV layer has already removed the outer quotes.
    value = value.strip()
    if value.startswith('="') and value.endswith('"'):
        return value[2:-1].strip()
    return value


def _tidy(values: dict[str, Any]) -> dict[str, Any]:
    book: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            value = _SPACES.sub(" ", value).strip()
            if key in ("published_year", "pages") and _INTEGER.fullmatch(value):
                value = int(value)
        # An empty optional field is absent; an empty name or author stays, to be reported.
        if value == "" and key not in ("name", "author"):
            continue
        book[key] = value
    return book


def _json_lines(text: str, name: str) -> Iterator[Entry]:
    first = True
    # "\n" only: str.splitlines() also splits at U+2028, U+2029 and U+0085, which JSON
    # strings may hold unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            if first:
                raise CatalogueError(f"{name} is not JSON Lines; {EXPECTED}") from None
            yield Entry(number, errors=[_row_error("not valid JSON")])
            continue
        if not isinstance(value, dict):
            yield Entry(number, errors=[_row_error("not a JSON object")])
            continue
        keys = {_PLAIN_ALIASES.get(key, key): item for key, item in value.items()}
        # The first object stands for the header: without name and author it is not ours.
        if first and not {"name", "author"} <= set(keys):
            raise CatalogueError(f"{name}: line {number} has no name and author; {EXPECTED}")
        first = False
        yield Entry(number, _tidy_json({k: v for k, v in keys.items() if k in FIELDS}))


def _tidy_json(values: dict[str, Any]) -> dict[str, Any]:
    # JSON already has types: only strings are tidied, so a number stays a number.
    strings = {key: value for key, value in values.items() if isinstance(value, str)}
    others = {key: value for key, value in values.items() if not isinstance(value, str)}
    if "isbn" in strings:
        strings["isbn"] = _unquote_isbn(strings["isbn"])
    return {**others, **_tidy(strings)}


def _row_error(message: str) -> dict[str, str]:
    return {"field": "", "message": message, "type": "row_unreadable"}
