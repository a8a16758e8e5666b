from pydantic import BaseModel, ConfigDict


class BookBase(BaseModel):
    book_name: str
    author: str
    publisher: str | None = None
    published_year: int | None = None
    pages: int | None = None


class BookCreate(BookBase):
    pass


class BookUpdate(BaseModel):
    book_name: str | None = None
    author: str | None = None
    publisher: str | None = None
    published_year: int | None = None
    pages: int | None = None


class Book(BookBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
