"""Bad input, kind by kind: always a 4xx problem+json, never a 500, nothing stored changes."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bookshelf import columns as models

BookData = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()  # ASCII-only: lone surrogates become \uXXXX escapes


@pytest.fixture
async def stored(client: httpx.AsyncClient, book_data: BookData) -> AsyncIterator[dict[str, Any]]:
    """A book that must come out of every bad request unchanged."""
    book = (await client.post("/books", json=book_data(isbn="9780306406157"))).json()
    yield book
    assert (await client.get(f"/books/{book['id']}")).json() == book
    assert len((await client.get("/books")).json()["items"]) == 1


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == status
    return problem


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem["errors"]}


@pytest.mark.parametrize(
    "text", ["nul\x00inside", "lone \ud800 surrogate", "bell\x07", "\udfff"], ids=repr
)
async def test_create_book_returns_422_for_text_postgres_cannot_store(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any], text: str
) -> None:
    # Sent as JSON escapes (\u0000, \ud800), which is how such strings arrive over the wire.
    body = book_data(name=text, author=text, publisher=text)
    problem = assert_problem(await client.post("/books", content=as_json(body), headers=JSON), 422)
    assert error_fields(problem) == {"body.name", "body.author", "body.publisher"}
    patch = await client.patch(
        f"/books/{stored['id']}", content=as_json({"name": text}), headers=JSON
    )
    assert_problem(patch, 422)


@pytest.mark.parametrize("param", ["name", "author", "q"])
async def test_list_books_returns_422_for_unstorable_text_in_query(
    client: httpx.AsyncClient, stored: dict[str, Any], param: str
) -> None:
    problem = assert_problem(await client.get("/books", params={param: "a\x00b"}), 422)
    assert error_fields(problem) == {f"query.{param}"}


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("name", models.NAME_MAX_LENGTH),
        ("author", models.AUTHOR_MAX_LENGTH),
        ("publisher", models.PUBLISHER_MAX_LENGTH),
    ],
)
async def test_create_book_accepts_the_column_limit_and_refuses_one_more(
    client: httpx.AsyncClient, book_data: BookData, field: str, limit: int
) -> None:
    at_limit = await client.post("/books", json=book_data(**{field: "é" * limit}))
    assert at_limit.status_code == 201, at_limit.text
    over = await client.post("/books", json=book_data(**{field: "x" * (limit + 1)}))
    assert error_fields(assert_problem(over, 422)) == {f"body.{field}"}


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
async def test_create_book_refuses_blank_required_text(
    client: httpx.AsyncClient, book_data: BookData, blank: str
) -> None:
    problem = assert_problem(await client.post("/books", json=book_data(name=blank)), 422)
    assert error_fields(problem) == {"body.name"}


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("published_year", [models.YEAR_MIN - 1, models.YEAR_MAX + 1, 2**31, -(2**63) - 1]),
        ("pages", [0, models.PAGES_MAX + 1, 2**64, -1]),
    ],
)
async def test_create_book_refuses_numbers_out_of_range(
    client: httpx.AsyncClient,
    book_data: BookData,
    stored: dict[str, Any],
    field: str,
    values: list[int],
) -> None:
    for value in values:
        problem = assert_problem(await client.post("/books", json=book_data(**{field: value})), 422)
        assert error_fields(problem) == {f"body.{field}"}


@pytest.mark.parametrize("value", ["12", 3.5, True, "abc", [1]])
async def test_create_book_refuses_wrong_types(
    client: httpx.AsyncClient, book_data: BookData, value: object
) -> None:
    problem = assert_problem(await client.post("/books", json=book_data(pages=value)), 422)
    assert error_fields(problem) == {"body.pages"}


@pytest.mark.parametrize(
    "book_id",
    ["0", "-1", str(2**63), "99999999999999999999999", "abc", "1_0", "+1", "1.0", "\u0661"],
)
async def test_book_routes_return_422_for_ids_out_of_range(
    client: httpx.AsyncClient, stored: dict[str, Any], book_id: str
) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"/books/{book_id}", json={"pages": 1})
        assert error_fields(assert_problem(response, 422)) == {"path.book_id"}


async def test_book_routes_return_404_for_unknown_ids(
    client: httpx.AsyncClient, stored: dict[str, Any]
) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"/books/{2**63 - 1}", json={"pages": 1})
        assert assert_problem(response, 404)["title"] == "Book not found"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": str(2**64)},
        {"limit": "x"},
        {"limit": "5.0"},
        {"limit": "1_0"},
    ],
    ids=str,
)
async def test_list_books_returns_422_for_limits_out_of_range(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert error_fields(assert_problem(await client.get("/books", params=params), 422)) == {
        "query.limit"
    }


@pytest.mark.parametrize(
    "cursor", ["nonsense", "aWQ6LTE", "eDox", "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk", "\u00e9", "\ufffd"]
)
async def test_list_books_returns_400_for_cursors_it_did_not_issue(
    client: httpx.AsyncClient, cursor: str
) -> None:
    assert_problem(await client.get("/books", params={"cursor": cursor}), 400)


@pytest.mark.parametrize("isbn", ["9780306406158", "0306406153", "12345", "978030640615X"])
async def test_create_book_refuses_isbns_with_bad_checksums_or_shapes(
    client: httpx.AsyncClient, book_data: BookData, isbn: str
) -> None:
    problem = assert_problem(await client.post("/books", json=book_data(isbn=isbn)), 422)
    assert error_fields(problem) == {"body.isbn"}


@pytest.mark.parametrize(
    "body", [b'{"name": "x", ', b"not json", b"\xff\xfe\x00", b'{"name": "\\ud800"'], ids=repr
)
async def test_create_book_returns_400_for_malformed_json(
    client: httpx.AsyncClient, stored: dict[str, Any], body: bytes
) -> None:
    response = await client.post(
        "/books", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_writes_return_415_for_non_json_bodies(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any], content_type: str
) -> None:
    body = b'{"name": "x", "author": "y"}'
    headers = {"Content-Type": content_type}
    assert_problem(await client.post("/books", content=body, headers=headers), 415)
    patch = await client.patch(f"/books/{stored['id']}", content=body, headers=headers)
    assert_problem(patch, 415)


async def test_writes_accept_json_with_a_charset(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    response = await client.post(
        "/books",
        content=b'{"name": "x", "author": "y"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_writes_return_422_for_unknown_fields(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any]
) -> None:
    problem = assert_problem(await client.post("/books", json=book_data(book_name="x")), 422)
    assert error_fields(problem) == {"body.book_name"}
    patch = await client.patch(f"/books/{stored['id']}", json={"id": 5, "version": 9})
    assert error_fields(assert_problem(patch, 422)) == {"body.id", "body.version"}


async def test_writes_return_422_for_bodies_that_are_not_objects(
    client: httpx.AsyncClient, stored: dict[str, Any]
) -> None:
    for body in ([], "text", 1, None):
        assert_problem(await client.post("/books", content=as_json(body), headers=JSON), 422)


async def test_create_book_returns_413_for_bodies_over_1_mib(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any]
) -> None:
    big = book_data(publisher="x" * (1024 * 1024))
    assert_problem(await client.post("/books", json=big), 413)


async def test_create_book_returns_413_for_chunked_bodies_over_1_mib(
    client: httpx.AsyncClient, stored: dict[str, Any]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "x", "author": "y", "publisher": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post(
        "/books", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_create_book_returns_409_pointing_at_the_existing_book(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any]
) -> None:
    same_isbn = book_data(name="Other title", isbn="0-306-40615-2")
    problem = assert_problem(await client.post("/books", json=same_isbn), 409)
    assert problem["existing_id"] == stored["id"]
    assert problem["existing_url"] == f"/books/{stored['id']}"


async def test_create_book_returns_409_for_same_name_and_author_without_isbn(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    first = (await client.post("/books", json=book_data(name="Solaris", author="Lem"))).json()
    again = await client.post("/books", json=book_data(name=" SOLARIS ", author="lem"))
    assert assert_problem(again, 409)["existing_id"] == first["id"]
    with_isbn = await client.post(
        "/books", json=book_data(name="Solaris", author="Lem", isbn="9780306406157")
    )
    assert with_isbn.status_code == 201  # an ISBN makes it a distinct edition


async def test_concurrent_duplicate_creates_give_one_201_and_the_rest_409(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    for body in (book_data(isbn="9780306406157"), book_data(name="Race", author="Condition")):
        responses = await asyncio.gather(*(client.post("/books", json=body) for _ in range(12)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 11
        created_id = next(r.json()["id"] for r in responses if r.status_code == 201)
        assert {r.json()["existing_id"] for r in responses if r.status_code == 409} == {created_id}


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nope"), 404)
    assert_problem(await client.put("/books/1", json={}), 405)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/books/1", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/books", "GET, HEAD, POST"),
        ("POST", "/health/live", "GET, HEAD"),
    ],
)
async def test_405_allow_header_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path, json={})
    assert_problem(response, 405)
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize(
    "isbn",
    ["٠٢٦١١٠٢٢١٤", "978０３０６４０６１５7", "²261102214"],
    ids=["arabic", "fullwidth", "sup"],
)
async def test_create_book_returns_422_for_isbns_in_non_ascii_digits(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any], isbn: str
) -> None:
    # str.isdigit accepts these, int() reads them, and the table's CHECK refuses them.
    response = await client.post("/books", json=book_data(name="Digits", isbn=isbn))
    assert error_fields(assert_problem(response, 422)) == {"body.isbn"}
    patch = await client.patch(f"/books/{stored['id']}", json={"isbn": isbn})
    assert error_fields(assert_problem(patch, 422)) == {"body.isbn"}


@pytest.mark.parametrize(
    "if_match",
    ['"v9999999999"', '"v99999999999999999999"', '"v\u00b2"', 'W/"v1"', "v1", '"v1', '"x1"'],
    ids=repr,
)
async def test_writes_return_412_for_if_match_that_is_not_a_current_strong_tag(
    client: httpx.AsyncClient, stored: dict[str, Any], if_match: str
) -> None:
    headers = {"If-Match": if_match.encode("latin-1")}
    patch = await client.patch(f"/books/{stored['id']}", json={"pages": 2}, headers=headers)
    assert_problem(patch, 412)
    assert_problem(await client.delete(f"/books/{stored['id']}", headers=headers), 412)
    assert_problem(await client.delete(f"/books/{stored['id'] + 1000}", headers=headers), 404)


@pytest.mark.parametrize("raw", ["id: 5", "id:5_0", "id:+5", "id:٥", "id:5 "], ids=repr)
async def test_list_books_returns_400_for_cursors_that_only_look_like_ours(
    client: httpx.AsyncClient, raw: str
) -> None:
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    assert_problem(await client.get("/books", params={"cursor": cursor}), 400)


async def test_writes_return_415_for_json_suffixes_outside_application(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any]
) -> None:
    headers = {"Content-Type": "foo/bar+json"}
    response = await client.post("/books", content=as_json(book_data()), headers=headers)
    assert_problem(response, 415)


async def test_validation_errors_cap_the_names_of_unknown_fields(
    client: httpx.AsyncClient, book_data: BookData, stored: dict[str, Any]
) -> None:
    problem = assert_problem(
        await client.post("/books", json={**book_data(), "k" * 200_000: 1}), 422
    )
    (field,) = error_fields(problem)
    assert field.startswith("body.kkk") and len(field) <= 100


async def test_validation_errors_list_at_most_20_fields(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    """It answers thousands of unknown fields with a short list, not a megabytes echo."""
    body = book_data(**{f"unknown_{i}": i for i in range(5000)})
    problem = assert_problem(await client.post("/books", json=body), 422)
    assert len(problem["errors"]) == 20
