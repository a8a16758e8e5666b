"""`POST /books/import`: up to 1,000 books in one request, one outcome per position.

Each item is validated on its own with `BookCreate`, so an invalid item never blocks the
others. The valid ones are written in one transaction of two statements, whatever their
number: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING`, where the unique
indexes decide what is a duplicate (also against concurrent imports: the insert waits for
the other transaction), then one lookup that gives every position the id of its book.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ValidationError

from bookshelf.db import Connection, Database
from bookshelf.deps import DbDep, JsonBody, WriteAccess
from bookshelf.errors import field_errors, problem_responses
from bookshelf.responses import JsonBytes
from bookshelf.schemas import BookCreate
from bookshelf.service import FIELDS

MAX_BOOKS = 1000

# Arrays in, one statement: asyncpg sends each column as one array parameter.
# Rows go in sorted by the duplicate key, never in file order: two imports that share books
# then wait for each other's keys in the same order, which cannot deadlock. The key is the
# ISBN alone when there is one (as the unique index has it), so of repeats in a batch the
# earliest position is inserted, whatever their names.
_INPUT = """
    unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])
        WITH ORDINALITY AS input(name, author, isbn, publisher, published_year, pages, position)
"""
_INSERT = f"""
    INSERT INTO book (name, author, isbn, publisher, published_year, pages)
    SELECT name, author, isbn, publisher, published_year, pages
    FROM {_INPUT}
    ORDER BY isbn,
        CASE WHEN isbn IS NULL THEN lower(name) END,
        CASE WHEN isbn IS NULL THEN lower(author) END,
        position
    ON CONFLICT DO NOTHING
    RETURNING id
"""
# A separate statement, so it sees rows a concurrent import committed while our insert
# waited for it. The two branches each use their unique index.
_FIND_IDS = """
    SELECT input.position, found.id
    FROM unnest($1::text[], $2::text[], $3::text[])
        WITH ORDINALITY AS input(name, author, isbn, position)
    LEFT JOIN LATERAL (
        SELECT id FROM book WHERE book.isbn = input.isbn
        UNION ALL
        SELECT id FROM book
        WHERE input.isbn IS NULL AND book.isbn IS NULL
          AND lower(book.name) = lower(input.name) AND lower(book.author) = lower(input.author)
        LIMIT 1
    ) AS found ON true
"""
# A conflicting row may be deleted between the insert and the lookup; then we insert again.
_ATTEMPTS = 3

imports = APIRouter(prefix="/books", tags=["books"])


class ImportResult(BaseModel):
    index: int
    status: Literal["created", "duplicate", "invalid"]
    id: int | None = None
    existing_id: int | None = None
    errors: list[dict[str, str]] | None = None


class ImportReport(BaseModel):
    results: list[ImportResult]
    created: int
    duplicates: int
    invalid: int


@dataclass
class _Valid:
    index: int
    book: BookCreate


@imports.post(
    "/import",
    response_model=ImportReport,
    dependencies=[WriteAccess, JsonBody],
    responses=problem_responses(400, 401, 408, 413, 415, 422, 503),
)
async def import_books(
    db: DbDep,
    books: Annotated[
        list[Any],
        Body(
            min_length=1,
            max_length=MAX_BOOKS,
            description="Books as for POST /books; each is validated on its own.",
        ),
    ],
) -> Response:
    """Store the new books; report each position as `created`, `duplicate` or `invalid`."""
    results: list[dict[str, Any]] = [{} for _ in books]
    valid: list[_Valid] = []
    for index, item in enumerate(books):
        try:
            valid.append(_Valid(index, BookCreate.model_validate(item)))
        except ValidationError as exc:
            results[index] = {"index": index, "status": "invalid", "errors": _errors(exc)}
    for index, result in (await store_books(db, [v.book for v in valid])).items():
        results[valid[index].index] = {"index": valid[index].index, **result}
    return JsonBytes(_report(results))


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return field_errors(exc.errors(include_input=False, include_url=False))


def _report(results: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = [result["status"] for result in results]
    return {
        "results": results,
        "created": statuses.count("created"),
        "duplicates": statuses.count("duplicate"),
        "invalid": statuses.count("invalid"),
    }


async def store_books(db: Database, books: list[BookCreate]) -> dict[int, dict[str, Any]]:
    """Outcome per position in `books`: created with its id, or a duplicate of an existing id.

    All or nothing: if any statement fails, the transaction stores none of them.
    """
    outcomes: dict[int, dict[str, Any]] = {}
    pending = list(range(len(books)))
    if not pending:
        return outcomes  # every item was invalid: no need for a connection
    async with db.connection() as conn, conn.transaction():
        for _ in range(_ATTEMPTS):
            if not pending:
                break
            batch = [books[i] for i in pending]
            created = {row["id"] for row in await conn.fetch(_INSERT, *_columns(batch))}
            ids = await _find_ids(conn, batch)
            pending = _classify(pending, ids, created, outcomes)
    for index in pending:  # deleted under us every time: rare enough to report as is
        outcomes[index] = {"status": "duplicate", "existing_id": None}
    return outcomes


def _columns(books: list[BookCreate]) -> list[list[Any]]:
    return [[getattr(book, name) for book in books] for name in FIELDS]


async def _find_ids(conn: Connection, books: list[BookCreate]) -> list[int | None]:
    name, author, isbn = _columns(books)[:3]
    rows = await conn.fetch(_FIND_IDS, name, author, isbn)
    ids: list[int | None] = [None] * len(books)
    for row in rows:
        ids[row["position"] - 1] = row["id"]
    return ids


def _classify(
    pending: list[int],
    ids: list[int | None],
    created: set[int],
    outcomes: dict[int, dict[str, Any]],
) -> list[int]:
    """Fill `outcomes` for the positions resolved; return the ones to try again."""
    unresolved = []
    for index, book_id in zip(pending, ids, strict=True):
        if book_id is None:
            unresolved.append(index)
        elif book_id in created:
            # The first position with this book made it; later ones in the batch repeat it.
            created.discard(book_id)
            outcomes[index] = {"status": "created", "id": book_id}
        else:
            outcomes[index] = {"status": "duplicate", "existing_id": book_id}
    return unresolved
