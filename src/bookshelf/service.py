"""Book operations: one SQL statement per request on the happy path.

Duplicates are decided by the unique indexes (`ON CONFLICT DO NOTHING`), never by a lookup
before the insert, so concurrent creates of one book give exactly one row.
"""

import base64
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from bookshelf.columns import ID_MAX, SEARCH_COLUMN
from bookshelf.db import Connection, Database
from bookshelf.errors import BadRequest, BookNotFound, DuplicateBook, PreconditionFailed
from bookshelf.schemas import BookCreate, BookUpdate

COLUMNS = (
    "id, name, author, isbn, publisher, published_year, pages, created_at, updated_at, version"
)
FIELDS = ("name", "author", "isbn", "publisher", "published_year", "pages")

_INSERT = f"""
    INSERT INTO book (name, author, isbn, publisher, published_year, pages)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT DO NOTHING
    RETURNING {COLUMNS}
"""
_FIND_DUPLICATE = """
    SELECT id FROM book
    WHERE CASE WHEN $1::text IS NULL
               THEN isbn IS NULL AND lower(name) = lower($2) AND lower(author) = lower($3)
               ELSE isbn = $1 END
"""
_SELECT_ONE = f"SELECT {COLUMNS} FROM book WHERE id = $1"
# One statement for every PATCH: $8..$13 say which fields the client sent.
_UPDATE = f"""
    UPDATE book SET
        name = CASE WHEN $8 THEN $2 ELSE name END,
        author = CASE WHEN $9 THEN $3 ELSE author END,
        isbn = CASE WHEN $10 THEN $4 ELSE isbn END,
        publisher = CASE WHEN $11 THEN $5 ELSE publisher END,
        published_year = CASE WHEN $12 THEN $6::int ELSE published_year END,
        pages = CASE WHEN $13 THEN $7::int ELSE pages END,
        version = version + 1,
        updated_at = now()
    WHERE id = $1 AND ($14::int[] IS NULL OR version = ANY($14))
    RETURNING {COLUMNS}
"""
_DELETE = "DELETE FROM book WHERE id = $1 AND ($2::int[] IS NULL OR version = ANY($2)) RETURNING id"
_EXISTS = "SELECT true FROM book WHERE id = $1"


# What `encode_cursor` writes; int() alone would also take "+5", "5_0" or Arabic digits.
_CURSOR = re.compile(r"id:([0-9]{1,19})")


@dataclass(frozen=True)
class BookFilter:
    name: str | None = None
    author: str | None = None
    isbn: str | None = None
    q: str | None = None


async def create_book(db: Database, book: BookCreate) -> asyncpg.Record:
    values = [getattr(book, field) for field in FIELDS]
    async with db.connection() as conn:
        # Retry once: the conflicting row may be deleted between our insert and the lookup.
        for _ in range(2):
            row = await conn.fetchrow(_INSERT, *values)
            if row is not None:
                return row
            existing_id = await conn.fetchval(_FIND_DUPLICATE, book.isbn, book.name, book.author)
            if existing_id is not None:
                raise DuplicateBook(existing_id)
    raise DuplicateBook(None)


async def get_book(db: Database, book_id: int) -> asyncpg.Record:
    row = await db.fetchrow(_SELECT_ONE, book_id)
    if row is None:
        raise BookNotFound(book_id)
    return row


async def list_books(
    db: Database, where: BookFilter, limit: int, cursor: str | None
) -> tuple[list[asyncpg.Record], str | None]:
    query, args = _list_query(where, limit + 1, decode_cursor(cursor) if cursor else None)
    rows = await db.fetch(query, *args)
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1]["id"])
    return rows, None


def _list_query(where: BookFilter, limit: int, after: int | None) -> tuple[str, list[Any]]:
    # Only the filters given become SQL, so each combination gets its own prepared statement
    # and a plan that uses its index (a generic "$1 IS NULL OR ..." plan would not).
    conditions: list[str] = []
    args: list[Any] = []

    def add(template: str, value: Any) -> None:
        args.append(value)
        conditions.append(template.format(f"${len(args)}"))

    if where.name is not None:
        add("lower(name) = lower({})", where.name)
    if where.author is not None:
        add("lower(author) = lower({})", where.author)
    if where.isbn is not None:
        add("isbn = {}", where.isbn)
    if where.q is not None:
        add(f"{SEARCH_COLUMN} LIKE lower({{}})", f"%{_escape_like(where.q)}%")
    if after is not None:
        add("id > {}", after)
    args.append(limit)
    clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {COLUMNS} FROM book {clause} ORDER BY id LIMIT ${len(args)}", args


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except ValueError:  # not base64 (binascii.Error), not ASCII in or out
        raw = ""
    match = _CURSOR.fullmatch(raw)
    if match is None or int(match[1]) > ID_MAX:
        raise BadRequest("The cursor is malformed; pass `next_cursor` from a previous page.")
    return int(match[1])


async def update_book(
    db: Database, book_id: int, changes: BookUpdate, if_match: list[int] | None
) -> asyncpg.Record:
    sent = changes.model_fields_set
    if not sent:
        # Nothing to change: no new version, so the client's ETags stay valid.
        return await _current_book(db, book_id, if_match)
    values = [getattr(changes, field) for field in FIELDS]
    flags = [field in sent for field in FIELDS]
    async with db.connection() as conn:
        try:
            row = await conn.fetchrow(_UPDATE, book_id, *values, *flags, if_match)
        except asyncpg.UniqueViolationError:
            current = await conn.fetchrow(_SELECT_ONE, book_id)
            merged = {**dict(current or {}), **changes.changes()}
            existing_id = await conn.fetchval(
                _FIND_DUPLICATE, merged.get("isbn"), merged.get("name"), merged.get("author")
            )
            raise DuplicateBook(existing_id) from None
        if row is None:
            await _raise_missing_or_stale(conn, book_id)
        assert row is not None
        return row


async def _current_book(db: Database, book_id: int, if_match: list[int] | None) -> asyncpg.Record:
    row = await get_book(db, book_id)
    if if_match is not None and row["version"] not in if_match:
        raise PreconditionFailed(book_id)
    return row


async def delete_book(db: Database, book_id: int, if_match: list[int] | None) -> None:
    async with db.connection() as conn:
        if await conn.fetchval(_DELETE, book_id, if_match) is None:
            await _raise_missing_or_stale(conn, book_id)


async def _raise_missing_or_stale(conn: Connection, book_id: int) -> None:
    if await conn.fetchval(_EXISTS, book_id):
        raise PreconditionFailed(book_id)
    raise BookNotFound(book_id)
