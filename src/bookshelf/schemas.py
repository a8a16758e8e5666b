"""API schemas, one per direction. Limits come from `models`, so API and table agree."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bookshelf import columns
from bookshelf.isbn import to_isbn13
from bookshelf.text import ascii_digits, clean_text


def _clean(value: object) -> object:
    # Non-strings pass through so pydantic reports them as the wrong type.
    return clean_text(value) if isinstance(value, str) else value


def _text(max_length: int) -> object:
    return Field(min_length=1, max_length=max_length)


Name = Annotated[str, BeforeValidator(_clean), _text(columns.NAME_MAX_LENGTH)]
Author = Annotated[str, BeforeValidator(_clean), _text(columns.AUTHOR_MAX_LENGTH)]
Publisher = Annotated[str, BeforeValidator(_clean), _text(columns.PUBLISHER_MAX_LENGTH)]
Isbn = Annotated[
    str,
    BeforeValidator(_clean),
    Field(min_length=10, max_length=17, examples=["978-0-306-40615-7"]),
    AfterValidator(to_isbn13),
]
SearchText = Annotated[
    str,
    BeforeValidator(_clean),
    _text(columns.NAME_MAX_LENGTH + columns.AUTHOR_MAX_LENGTH + 1),
]


def _decimal(value: object) -> object:
    # Path and query values arrive as text, which pydantic's int parsing reads leniently:
    # "1_0" as 10, "+1", " 1" and "1.0" as 1. An id or a limit is plain ASCII digits.
    if isinstance(value, str) and not ascii_digits(value):
        raise ValueError("must be a whole number written in the digits 0-9")
    return value


# For integers given in a path or query string.
DECIMAL_DIGITS = BeforeValidator(_decimal)
Year = Annotated[int, Field(ge=columns.YEAR_MIN, le=columns.YEAR_MAX)]
Pages = Annotated[int, Field(ge=columns.PAGES_MIN, le=columns.PAGES_MAX)]


# Strict: "12" is not a page count and true is not a year; a client sending them has a bug.
_INPUT = ConfigDict(extra="forbid", strict=True)


class BookCreate(BaseModel):
    model_config = _INPUT

    name: Name
    author: Author
    isbn: Isbn | None = None
    publisher: Publisher | None = None
    published_year: Year | None = None
    pages: Pages | None = None


class BookUpdate(BaseModel):
    """Fields present are replaced; `null` clears an optional field."""

    model_config = _INPUT

    name: Name | None = None
    author: Author | None = None
    isbn: Isbn | None = None
    publisher: Publisher | None = None
    published_year: Year | None = None
    pages: Pages | None = None

    @field_validator("name", "author", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Before-validators see only what the client sent, so an absent field passes.
        if value is None:
            raise ValueError("cannot be null; omit the field to keep its value")
        return value

    def changes(self) -> dict[str, object]:
        return {field: getattr(self, field) for field in self.model_fields_set}


class BookRead(BaseModel):
    id: int
    name: str
    author: str
    isbn: str | None
    publisher: str | None
    published_year: int | None
    pages: int | None
    created_at: datetime
    updated_at: datetime
    version: int


class BookQuery(BaseModel):
    """The filters and page of `GET /books`, validated in one pass (see `deps.book_query`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Name | None = Field(None, description="Exact name, case-insensitive")
    author: Author | None = Field(None, description="Exact author, case-insensitive")
    isbn: Isbn | None = Field(None, description="ISBN-10 or ISBN-13")
    q: SearchText | None = Field(None, description="Case-insensitive substring of name or author")
    limit: Annotated[int, DECIMAL_DIGITS] = Field(20, ge=1, le=100, description="Books per page")
    cursor: str | None = Field(
        None, max_length=64, description="`next_cursor` of the previous page"
    )


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI `parameters` for a model whose fields are read from the query string."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": field.pop("description", ""),
            "schema": field,
        }
        for name, field in schema["properties"].items()
    ]


class BookPage(BaseModel):
    items: list[BookRead]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page")
