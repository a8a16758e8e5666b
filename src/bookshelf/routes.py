"""HTTP routes: /books and /health. Handlers parse, call `service`, and shape the response."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from bookshelf import db as database
from bookshelf import service
from bookshelf.deps import BookDep, BookId, BookQueryDep, DbDep, JsonBody, WriteAccess
from bookshelf.errors import DB_UNAVAILABLE, problem_response, problem_responses
from bookshelf.responses import JsonBytes, etag, none_match, parse_if_match
from bookshelf.schemas import (
    BookCreate,
    BookPage,
    BookQuery,
    BookRead,
    BookUpdate,
    query_parameters,
)

books = APIRouter(prefix="/books", tags=["books"])
health = APIRouter(prefix="/health", tags=["health"])

READY_TIMEOUT_SECONDS = 2.0


def _book_response(row: dict[str, object], status: int = 200) -> JsonBytes:
    return JsonBytes(row, status, headers={"ETag": etag(int(str(row["version"])))})


@books.post(
    "",
    status_code=201,
    response_model=BookRead,
    dependencies=[WriteAccess, JsonBody],
    responses=problem_responses(400, 401, 408, 409, 413, 415, 422, 503),
)
async def create_book(db: DbDep, book: BookCreate) -> Response:
    row = dict(await service.create_book(db, book))
    response = _book_response(row, 201)
    response.headers["Location"] = f"/books/{row['id']}"
    return response


@books.get(
    "",
    response_model=BookPage,
    responses=problem_responses(400, 422, 503),
    openapi_extra={"parameters": query_parameters(BookQuery)},
)
async def list_books(db: DbDep, query: BookQueryDep) -> Response:
    where = service.BookFilter(name=query.name, author=query.author, isbn=query.isbn, q=query.q)
    rows, next_cursor = await service.list_books(db, where, query.limit, query.cursor)
    return JsonBytes({"items": [dict(row) for row in rows], "next_cursor": next_cursor})


# The hot read path reads If-None-Match from the request itself: a declared Header parameter
# costs more than the rest of the handler. It is documented here instead.
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag from an earlier read; 304 while the book is unchanged",
    "schema": {"type": "string"},
}


@books.get(
    "/{book_id}",
    response_model=BookRead,
    responses={304: {"description": "Not modified"}, **problem_responses(404, 422, 503)},
    openapi_extra={"parameters": [_IF_NONE_MATCH]},
)
async def get_book(request: Request, book: BookDep) -> Response:
    tag = etag(book["version"])
    if none_match(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    return _book_response(dict(book))


@books.patch(
    "/{book_id}",
    response_model=BookRead,
    dependencies=[WriteAccess, JsonBody],
    responses=problem_responses(400, 401, 404, 408, 409, 412, 413, 415, 422, 503),
)
async def update_book(
    db: DbDep,
    book_id: BookId,
    changes: BookUpdate,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    row = await service.update_book(db, book_id, changes, parse_if_match(if_match))
    return _book_response(dict(row))


@books.delete(
    "/{book_id}",
    status_code=204,
    dependencies=[WriteAccess],
    responses=problem_responses(401, 404, 412, 422, 503),
)
async def delete_book(
    db: DbDep, book_id: BookId, if_match: Annotated[str | None, Header()] = None
) -> Response:
    await service.delete_book(db, book_id, parse_if_match(if_match))
    return Response(status_code=204)


@health.get("/live")
async def live() -> dict[str, str]:
    """The process is up. Never touches the database, so a DB outage does not kill tasks."""
    return {"status": "ok"}


@health.get("/ready", responses=problem_responses(503))
async def ready(request: Request, db: DbDep) -> Response:
    """The database answers within a short bound and the schema is at the latest migration."""
    expected = request.app.state.head_revision
    try:
        current = await asyncio.wait_for(database.current_revision(db), READY_TIMEOUT_SECONDS)
    except DB_UNAVAILABLE:
        return problem_response(
            503, "Not ready", "The database is not reachable.", {"Retry-After": "5"}
        )
    if current != expected:
        return problem_response(
            503, "Not ready", f"Schema is at {current}, expected {expected}; run migrations."
        )
    return JsonBytes({"status": "ok", "database": "ok", "revision": current})
