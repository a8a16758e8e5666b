import httpx


async def test_create_then_get_returns_the_book(client: httpx.AsyncClient) -> None:
    created = await client.post("/books", json={"name": "Dune", "author": "Frank Herbert"})
    assert created.status_code == 201
    fetched = await client.get(created.headers["Location"])
    assert fetched.json() == created.json()
