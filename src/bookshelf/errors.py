"""Every error leaves as RFC 9457 `application/problem+json`.

Domain errors are `Problem` subclasses raised anywhere below the routes. Framework errors
(validation, unknown routes, bodies the parser refuses) and a database that cannot be reached
are translated here, so no handler has to think about the error format.
"""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

log = logging.getLogger("bookshelf.errors")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
MAX_FIELD_NAME = 100
MAX_FIELD_ERRORS = 20
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# What a database outage looks like from asyncpg: refused or timed-out connects, connections
# dropped mid-query, a server that is starting or shutting down.
DB_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


class PoolTimeout(TimeoutError):
    """No pooled connection came free in time: the request never reached the database."""


class Problem(Exception):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    title = "Internal server error"

    def __init__(
        self, detail: str, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class BookNotFound(Problem):
    status = HTTPStatus.NOT_FOUND
    title = "Book not found"

    def __init__(self, book_id: int) -> None:
        super().__init__(f"There is no book with id {book_id}.")


class DuplicateBook(Problem):
    status = HTTPStatus.CONFLICT
    title = "Duplicate book"

    def __init__(self, existing_id: int | None) -> None:
        if existing_id is None:
            super().__init__("A book with the same ISBN, or the same name and author, exists.")
        else:
            super().__init__(
                f"This book already exists as book {existing_id}.",
                headers={"Location": f"/books/{existing_id}"},
                existing_id=existing_id,
                existing_url=f"/books/{existing_id}",
            )


class PreconditionFailed(Problem):
    status = HTTPStatus.PRECONDITION_FAILED
    title = "Precondition failed"

    def __init__(self, book_id: int) -> None:
        super().__init__(f"Book {book_id} has changed since the ETag given in If-Match.")


class Unauthorized(Problem):
    status = HTTPStatus.UNAUTHORIZED
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__(
            "Writes need 'Authorization: Bearer <API key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


class UnsupportedMediaType(Problem):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported media type"

    def __init__(self) -> None:
        super().__init__("Send the body as JSON with 'Content-Type: application/json'.")


class BadRequest(Problem):
    status = HTTPStatus.BAD_REQUEST
    title = "Bad request"


def problem_response(
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.title, exc.detail, exc.headers, **exc.extensions)


def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else status.description
    headers = dict(exc.headers or {})
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    return problem_response(status, status.phrase, detail, headers)


def allowed_methods(app: Starlette, scope: Scope) -> list[str]:
    """Every method some route serves on this path. Starlette's 405 names only the methods of
    the first route that matched the path, while /books/{id} has one route per method."""
    allowed = {
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.routes)
    }
    if "GET" in allowed:
        allowed.add("HEAD")  # RequestContext answers HEAD for every GET
    return sorted(allowed)


def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    if any(error["type"] == "json_invalid" for error in errors):
        return problem_response(400, "Malformed JSON", "The request body is not valid JSON.")
    return problem_response(
        422, "Validation failed", "Some fields are invalid; see `errors`.", errors=errors
    )


def field_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    # The rejected input is never echoed: it may be huge, secret, or not even encodable. Only
    # the first few errors are listed, so 60,000 unknown keys do not make a 5 MB answer.
    return [
        {
            "field": _field_name(error["loc"]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in raw[:MAX_FIELD_ERRORS]
    ]


def _field_name(loc: Sequence[Any]) -> str:
    # An unknown field's name comes from the client: cap it so it is not echoed at any size.
    name = ".".join(str(part) for part in loc)
    return name if len(name) <= MAX_FIELD_NAME else name[: MAX_FIELD_NAME - 1] + "…"


def _on_db_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__)
    # A write that timed out reached a database that stopped answering: it may still commit
    # when the database resumes. Say so, rather than promise that nothing was written.
    unknown = (
        isinstance(exc, TimeoutError)
        and not isinstance(exc, PoolTimeout)
        and request.method not in _READ_METHODS
    )
    detail = (
        "The database did not answer in time; the write may still be applied when it "
        "recovers. Read the book before retrying (a repeated create answers 409 with it)."
        if unknown
        else "The database cannot be reached right now; retry shortly."
    )
    return problem_response(
        503,
        "Service unavailable",
        detail,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
        outcome_unknown=unknown,
    )


def _on_concurrent_change(request: Request, exc: Exception) -> Response:
    # PostgreSQL aborted this request's statement (or the import's transaction) to break a
    # deadlock with another write, e.g. two PATCHes swapping ISBNs: it changed nothing.
    log.info("write aborted by the database: %s", type(exc).__name__)
    return problem_response(
        409,
        "Concurrent change",
        "Another write to the same books got in the way; nothing was changed. Retry.",
    )


def _on_unexpected(request: Request, exc: Exception) -> Response:
    return problem_response(500, "Internal server error", "An unexpected error occurred.")


# What every error body holds (RFC 9457), plus the extensions this service adds.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "422: one entry per offending field",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "existing_id": {"type": "integer", "description": "409: the book that exists"},
        "existing_url": {"type": "string"},
        "outcome_unknown": {"type": "boolean", "description": "503: a write may yet apply"},
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route documents; `document_problems` fills in their body."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers send: FastAPI documents its 422 as
    `application/json` in its own shape, while every error here is problem+json."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema["paths"].values():
                for operation in path.values():
                    for status, response in operation.get("responses", {}).items():
                        if status[0] in "45":
                            ref = {"$ref": "#/components/schemas/Problem"}
                            response["content"] = {PROBLEM_JSON: {"schema": ref}}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            components["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(asyncpg.TransactionRollbackError, _on_concurrent_change)
    for exc_type in DB_UNAVAILABLE:
        app.add_exception_handler(exc_type, _on_db_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
