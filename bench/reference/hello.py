"""The framework ceiling: FastAPI returning a fixed small JSON on the same paths as the
benchmark's workloads, with no database, no middleware and no validation of the body."""

from fastapi import FastAPI

HELLO = {"message": "Hello World"}


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/books")
    async def list_books() -> dict[str, str]:
        return HELLO

    @app.get("/books/{book_id}")
    async def get_book(book_id: int) -> dict[str, str]:
        return HELLO

    @app.post("/books")
    async def create_book() -> dict[str, str]:
        return HELLO

    @app.patch("/books/{book_id}")
    async def update_book(book_id: int) -> dict[str, str]:
        return HELLO

    return app
