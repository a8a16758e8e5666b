"""The Book resource through HTTP: every endpoint's happy path and its conditional requests."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bookshelf.config import DbParams, Settings
from bookshelf.main import create_app
from tests.conftest import serve_in_process, settings_for

BookData = Callable[..., dict[str, Any]]


async def test_create_book_returns_201_with_location_and_etag(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    """It stores the book, trimmed and normalised, and says where it lives."""
    response = await client.post(
        "/books",
        json=book_data(name="  Cafe\u0301 Society  ", isbn="0-306-40615-2", pages=320),
    )
    assert response.status_code == 201
    book = response.json()
    assert book["name"] == "Caf\u00e9 Society"  # NFC: e + combining acute -> é
    assert book["isbn"] == "9780306406157"  # ISBN-10 stored as ISBN-13
    assert book["version"] == 1
    assert book["created_at"] == book["updated_at"]
    assert book["created_at"].endswith("+00:00")
    assert response.headers["Location"] == f"/books/{book['id']}"
    assert response.headers["ETag"] == '"v1"'


async def test_get_book_returns_the_stored_book_with_etag(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = (await client.post("/books", json=book_data())).json()
    response = await client.get(f"/books/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == '"v1"'


async def test_get_book_returns_304_when_if_none_match_is_current(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data())
    response = await client.get(
        created.headers["Location"], headers={"If-None-Match": created.headers["ETag"]}
    )
    assert response.status_code == 304
    assert response.content == b""
    stale = await client.get(created.headers["Location"], headers={"If-None-Match": '"v0"'})
    assert stale.status_code == 200


async def test_head_answers_like_get_without_a_body(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    """It serves HEAD wherever GET is served, as uptime monitors and `curl -I` expect."""
    created = await client.post("/books", json=book_data())
    get = await client.get(created.headers["Location"])
    head = await client.head(created.headers["Location"])
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(get.content))
    assert (await client.head("/health/live")).status_code == 200
    assert (await client.head("/books/999999")).status_code == 404


async def test_list_books_filters_by_name_case_insensitively(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    await client.post("/books", json=book_data(name="Dune", author="Frank Herbert"))
    await client.post("/books", json=book_data(name="Dune Messiah", author="Frank Herbert"))
    response = await client.get("/books", params={"name": "  DUNE "})
    assert response.status_code == 200
    assert [b["name"] for b in response.json()["items"]] == ["Dune"]


async def test_list_books_filters_by_author_and_isbn(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    await client.post("/books", json=book_data(author="Octavia E. Butler", name="Kindred"))
    await client.post("/books", json=book_data(isbn="978-0-306-40615-7"))
    by_author = await client.get("/books", params={"author": "octavia e. butler"})
    assert [b["name"] for b in by_author.json()["items"]] == ["Kindred"]
    by_isbn = await client.get("/books", params={"isbn": "0306406152"})
    assert [b["isbn"] for b in by_isbn.json()["items"]] == ["9780306406157"]


async def test_list_books_searches_substrings_of_name_and_author(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    await client.post("/books", json=book_data(name="Le Petit Prince", author="Saint-Exupéry"))
    await client.post("/books", json=book_data(name="100% Pure", author="A_B"))
    await client.post("/books", json=book_data(name="Other", author="Nobody"))
    assert _names(await client.get("/books", params={"q": "PETIT"})) == ["Le Petit Prince"]
    assert _names(await client.get("/books", params={"q": "exupÉry"})) == ["Le Petit Prince"]
    # LIKE wildcards in q are literal characters, not patterns.
    assert _names(await client.get("/books", params={"q": "0%"})) == ["100% Pure"]
    assert _names(await client.get("/books", params={"q": "a_b"})) == ["100% Pure"]


async def test_search_is_planned_with_its_value_every_time(
    db_params: DbParams, book_data: BookData
) -> None:
    # PostgreSQL may switch a prepared statement to a generic plan after five runs; for `q`
    # that plan scans the table in id order instead of using the trigram index.
    app = create_app(settings_for(db_params, db_pool_size=1))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post("/books", json=book_data(name="Dune"))
            for _ in range(8):
                assert _names(await client.get("/books", params={"q": "dun"})) == ["Dune"]
        plans = await app.state.db.fetch(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        )
    searches = [
        p for p in plans if p["statement"].startswith("SELECT") and "LIKE" in p["statement"]
    ]
    assert [(p["generic_plans"], p["custom_plans"]) for p in searches] == [(0, 8)]


async def test_list_books_pages_with_an_opaque_cursor(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    for i in range(5):
        await client.post("/books", json=book_data(name=f"Book {i}"))
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/books", params=params)).json()
        seen += [b["name"] for b in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [f"Book {i}" for i in range(5)]
    assert cursor is None


async def test_list_books_defaults_to_20_items(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    for i in range(21):
        await client.post("/books", json=book_data(name=f"Book {i}"))
    page = (await client.get("/books")).json()
    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


async def test_update_book_replaces_sent_fields_and_clears_nulls(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data(publisher="Ace", pages=304))
    response = await client.patch(
        created.headers["Location"],
        json={"name": "The Dispossessed", "publisher": None},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert response.status_code == 200
    book = response.json()
    assert (book["name"], book["publisher"], book["pages"]) == ("The Dispossessed", None, 304)
    assert book["version"] == 2
    assert book["updated_at"] > book["created_at"]
    assert response.headers["ETag"] == '"v2"'


async def test_update_book_returns_412_when_if_match_is_stale(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data())
    url = created.headers["Location"]
    await client.patch(url, json={"pages": 1})
    stale = await client.patch(url, json={"pages": 2}, headers={"If-Match": '"v1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await client.get(url)).json()["pages"] == 1


async def test_update_book_refuses_null_for_required_fields(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data())
    response = await client.patch(created.headers["Location"], json={"name": None})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.name"


async def test_update_book_returns_409_when_it_would_duplicate_another(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    first = (await client.post("/books", json=book_data(isbn="9780306406157"))).json()
    second = await client.post("/books", json=book_data(name="Another"))
    response = await client.patch(second.headers["Location"], json={"isbn": "9780306406157"})
    assert response.status_code == 409
    assert response.json()["existing_id"] == first["id"]


async def test_delete_book_returns_204_then_404(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data())
    url = created.headers["Location"]
    assert (await client.delete(url, headers={"If-Match": '"v1"'})).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404


async def test_delete_book_returns_412_when_if_match_is_stale(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data())
    url = created.headers["Location"]
    assert (await client.delete(url, headers={"If-Match": '"v7", W/"v9"'})).status_code == 412
    assert (await client.get(url)).status_code == 200
    assert (await client.delete(url, headers={"If-Match": "*"})).status_code == 204


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_writes_return_401_without_the_api_key(
    client: httpx.AsyncClient, book_data: BookData, method: str
) -> None:
    created = await client.post("/books", json=book_data())
    url = "/books" if method == "POST" else created.headers["Location"]
    for auth in ("", "Bearer wrong-key-0123456789", "Basic dGVzdA=="):
        headers = {"Authorization": auth}
        response = await client.request(method, url, json=book_data(name="x"), headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get(created.headers["Location"])).json()["version"] == 1


async def test_reads_need_no_api_key(client: httpx.AsyncClient, book_data: BookData) -> None:
    created = await client.post("/books", json=book_data())
    response = await client.get(created.headers["Location"], headers={"Authorization": ""})
    assert response.status_code == 200


async def test_writes_are_open_when_no_keys_are_configured(
    settings: Settings, book_data: BookData, caplog: pytest.LogCaptureFixture
) -> None:
    open_settings = settings.model_copy(update={"bookshelf_api_keys": ()})
    async with serve_in_process(open_settings) as anonymous:
        response = await anonymous.post("/books", json=book_data())
    assert response.status_code == 201
    assert "BOOKSHELF_API_KEYS is not set" in caplog.text


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/books", "/books/{book_id}", "/health/live", "/health/ready"} <= set(spec["paths"])
    listed = {param["name"] for param in spec["paths"]["/books"]["get"]["parameters"]}
    assert listed == {"name", "author", "isbn", "q", "limit", "cursor"}
    errors = [
        (path, method, status, response)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    ]
    assert {status for _, _, status, _ in errors} >= {"400", "401", "404", "409", "412", "422"}
    for path, method, status, response in errors:
        assert list(response["content"]) == ["application/problem+json"], (path, method, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert [scheme["scheme"] for scheme in spec["components"]["securitySchemes"].values()] == [
        "bearer"
    ]
    get_one = spec["paths"]["/books/{book_id}"]["get"]
    assert "If-None-Match" in {param["name"] for param in get_one["parameters"]}
    assert (await client.get("/docs")).status_code == 200


async def test_health_answers_for_any_host(client: httpx.AsyncClient) -> None:
    for host in ("10.0.3.7:8000", "bookshelf.example.com", "localhost"):
        live = await client.get("/health/live", headers={"Host": host})
        ready = await client.get("/health/ready", headers={"Host": host})
        assert (live.status_code, ready.status_code) == (200, 200)
    assert (await client.get("/health/ready")).json()["revision"] == "0001"


async def test_request_id_is_honoured_or_made_up(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    unsafe = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(unsafe.headers["X-Request-ID"]) == 32


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [book["name"] for book in response.json()["items"]]


async def test_update_book_with_nothing_to_change_keeps_the_version(
    client: httpx.AsyncClient, book_data: BookData
) -> None:
    created = await client.post("/books", json=book_data())
    url = created.headers["Location"]
    unchanged = await client.patch(url, json={}, headers={"If-Match": created.headers["ETag"]})
    assert unchanged.status_code == 200
    assert unchanged.json() == created.json()
    assert unchanged.headers["ETag"] == created.headers["ETag"]
    stale = await client.patch(url, json={}, headers={"If-Match": '"v0"'})
    assert stale.status_code == 412


async def test_api_keys_with_non_ascii_characters_match_when_sent_as_utf8(
    db_params: DbParams, book_data: BookData
) -> None:
    key = "clé-secrète-0123456789"
    async with serve_in_process(settings_for(db_params, bookshelf_api_keys=key)) as c:
        sent = await c.post(
            "/books", json=book_data(), headers={"Authorization": f"Bearer {key}".encode()}
        )
    assert sent.status_code == 201, sent.text
