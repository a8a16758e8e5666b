"""POST /books/import through HTTP: per-position outcomes, atomicity and concurrency."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from bookshelf import bulk
from bookshelf.config import DbParams, Settings
from bookshelf.main import create_app
from tests.conftest import API_KEY

DUNE = {"name": "Dune", "author": "Frank Herbert", "isbn": "9780441172719"}
FOUNDATION = {"name": "Foundation", "author": "Isaac Asimov"}


async def post_import(client: httpx.AsyncClient, books: Any) -> httpx.Response:
    return await client.post("/books/import", json=books)


async def test_import_books_returns_an_outcome_per_position(client: httpx.AsyncClient) -> None:
    """It creates new books, points duplicates at the existing id and explains invalid ones."""
    existing = (await client.post("/books", json=FOUNDATION)).json()["id"]
    response = await post_import(
        client,
        [
            DUNE,
            {"name": "foundation", "author": "ISAAC ASIMOV"},
            {"name": "Solaris", "author": "Stanisław Lem", "isbn": "9780156027602"},
            {"name": "", "author": "Nobody", "pages": 0},
        ],
    )
    assert response.status_code == 200
    report = response.json()
    created_dune, duplicate, invalid_isbn, invalid = report["results"]
    assert created_dune == {"index": 0, "status": "created", "id": created_dune["id"]}
    assert duplicate == {"index": 1, "status": "duplicate", "existing_id": existing}
    assert invalid_isbn["status"] == "invalid"
    assert [e["field"] for e in invalid_isbn["errors"]] == ["isbn"]
    assert invalid["status"] == "invalid"
    assert {e["field"] for e in invalid["errors"]} == {"name", "pages"}
    assert set(invalid["errors"][0]) == {"field", "message", "type"}  # input never echoed
    assert (report["created"], report["duplicates"], report["invalid"]) == (1, 1, 2)
    stored = await client.get(f"/books/{created_dune['id']}")
    assert stored.json()["isbn"] == "9780441172719"


async def test_import_books_marks_repeats_within_a_batch_as_duplicates_of_the_first(
    client: httpx.AsyncClient,
) -> None:
    response = await post_import(
        client,
        [
            DUNE,
            FOUNDATION,
            {**DUNE, "isbn": "0441172717"},  # the same ISBN, as an ISBN-10
            {"name": "  FOUNDATION ", "author": "isaac asimov"},
        ],
    )
    first, second, dune_again, foundation_again = response.json()["results"]
    assert dune_again == {"index": 2, "status": "duplicate", "existing_id": first["id"]}
    assert foundation_again == {"index": 3, "status": "duplicate", "existing_id": second["id"]}
    listed = await client.get("/books")
    assert len(listed.json()["items"]) == 2


async def test_import_books_twice_creates_nothing_the_second_time(
    client: httpx.AsyncClient,
) -> None:
    books = [DUNE, FOUNDATION, {"name": "Solaris", "author": "Stanisław Lem"}]
    first = (await post_import(client, books)).json()
    again = (await post_import(client, books)).json()
    assert (again["created"], again["duplicates"]) == (0, 3)
    assert [r["existing_id"] for r in again["results"]] == [r["id"] for r in first["results"]]


async def test_import_books_are_findable_by_search(client: httpx.AsyncClient) -> None:
    await post_import(client, [DUNE, FOUNDATION])
    found = await client.get("/books", params={"q": "asimov"})
    assert [book["name"] for book in found.json()["items"]] == ["Foundation"]


async def test_import_books_accepts_a_full_batch_in_one_request(
    client: httpx.AsyncClient,
) -> None:
    books = [{"name": f"Book {i}", "author": "Prolific"} for i in range(bulk.MAX_BOOKS)]
    report = (await post_import(client, books)).json()
    assert report["created"] == bulk.MAX_BOOKS
    assert len({result["id"] for result in report["results"]}) == bulk.MAX_BOOKS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Dune", "author": "Frank Herbert"}, "body"),
        ([], "body"),
        ([FOUNDATION] * (bulk.MAX_BOOKS + 1), "body"),
    ],
    ids=["not-an-array", "empty", "over-1000"],
)
async def test_import_books_returns_422_for_a_body_that_is_not_a_batch(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await post_import(client, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert (await client.get("/books")).json()["items"] == []


async def test_import_books_returns_401_without_the_api_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/books/import", json=[DUNE], headers={"Authorization": ""})
    assert response.status_code == 401
    assert (await client.get("/books")).json()["items"] == []


async def test_import_books_returns_415_for_a_body_that_is_not_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/books/import",
        content=b"name,author\nDune,Frank Herbert\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 415


async def test_import_books_returns_413_for_a_body_over_the_limit(
    client: httpx.AsyncClient,
) -> None:
    books = [
        {"name": "N" * 300, "author": f"Author {i}" + "A" * 180} for i in range(bulk.MAX_BOOKS)
    ]
    response = await post_import(client, books * 3)
    assert response.status_code == 413
    assert (await client.get("/books")).json()["items"] == []


@pytest.fixture
async def unraising_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client`, but a server error comes back as the 500 response a caller would see."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as c:
            yield c


@pytest.fixture
async def failing_insert(db_params: DbParams) -> AsyncIterator[None]:
    """A trigger that fails the insert of any book named 'Explodes', as a broken database would."""
    conn = await asyncpg.connect(**db_params.connect_kwargs())
    await conn.execute(
        """
        CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.name = 'Explodes' THEN RAISE EXCEPTION 'explodes'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER explode BEFORE INSERT ON book FOR EACH ROW EXECUTE FUNCTION explode();
        """
    )
    try:
        yield
    finally:
        await conn.execute("DROP TRIGGER explode ON book; DROP FUNCTION explode();")
        await conn.close()


@pytest.mark.usefixtures("failing_insert")
async def test_import_books_stores_nothing_when_the_insert_fails(
    unraising_client: httpx.AsyncClient,
) -> None:
    client = unraising_client
    response = await post_import(client, [DUNE, FOUNDATION, {"name": "Explodes", "author": "X"}])
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/books")).json()["items"] == []


async def test_import_books_stores_nothing_when_the_lookup_after_the_insert_fails(
    unraising_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insert and the lookup share one transaction: a failure after the insert undoes it."""
    client = unraising_client
    monkeypatch.setattr(bulk, "_FIND_IDS", "SELECT $1::text[], $2::text[], $3::text[], 1 / 0")
    response = await post_import(client, [DUNE, FOUNDATION])
    assert response.status_code == 500
    assert (await client.get("/books")).json()["items"] == []


async def test_import_books_concurrently_with_overlaps_stores_each_book_once(
    client: httpx.AsyncClient,
) -> None:
    """Overlapping batches at once, in opposite orders: no 500s (no deadlocks), no duplicates."""
    shared = [{"name": f"Shared {i}", "author": "Everyone"} for i in range(300)]
    isbns = ["9780441478125", "9780553803716", "9780756404734", "9780345391803", "9780765326355"]
    shared += [{"name": f"ISBN {isbn}", "author": "Someone", "isbn": isbn} for isbn in isbns]
    with_isbn = [DUNE, {"name": "Dune (again)", "author": "F. Herbert", "isbn": "0441172717"}]
    orders = [shared, shared[::-1], shared[150:] + shared[:150], shared[::-1]]
    batches = [
        order + with_isbn + [{"name": f"Own {i}", "author": "Me"}]
        for i, order in enumerate(orders * 2)
    ]
    responses = await asyncio.gather(*(post_import(client, batch) for batch in batches))
    assert [response.status_code for response in responses] == [200] * len(batches)
    reports = [response.json() for response in responses]
    assert sum(report["created"] for report in reports) == len(shared) + 1 + len(batches)
    for report, batch in zip(reports, batches, strict=True):
        assert report["created"] + report["duplicates"] == len(batch)
        assert all(r.get("id") or r.get("existing_id") for r in report["results"])


async def test_import_books_stores_the_first_of_repeats_whatever_their_names(
    client: httpx.AsyncClient,
) -> None:
    # One ISBN in two forms: position 0 must be the one stored, not the alphabetically first.
    response = await post_import(
        client,
        [
            {"name": "Later", "author": "B", "isbn": "123456789X"},
            {"name": "Earlier", "author": "A", "isbn": "9781234567897"},
        ],
    )
    created, repeat = response.json()["results"]
    assert created["status"] == "created"
    assert repeat == {"index": 1, "status": "duplicate", "existing_id": created["id"]}
    assert (await client.get(f"/books/{created['id']}")).json()["name"] == "Later"


async def test_import_books_reports_isbns_in_non_ascii_digits_as_invalid(
    client: httpx.AsyncClient,
) -> None:
    response = await post_import(client, [DUNE, {**FOUNDATION, "isbn": "٠٢٦١١٠٢٢١٤"}])
    dune, foundation = response.json()["results"]
    assert dune["status"] == "created"
    assert foundation["status"] == "invalid"
    assert [error["field"] for error in foundation["errors"]] == ["isbn"]
