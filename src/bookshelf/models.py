"""The database schema, as SQLAlchemy 2 models. Migrations create it; queries are plain SQL.

The limits come from `columns`, the single source for both the table's constraints and the API
schemas, so the API never accepts a value the database would refuse.
"""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bookshelf.columns import (
    AUTHOR_MAX_LENGTH,
    ISBN_LENGTH,
    NAME_MAX_LENGTH,
    PAGES_MAX,
    PAGES_MIN,
    PUBLISHER_MAX_LENGTH,
    SEARCH_COLUMN,
    SEARCH_EXPRESSION,
    YEAR_MAX,
    YEAR_MIN,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Book(Base):
    __tablename__ = "book"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    author: Mapped[str] = mapped_column(String(AUTHOR_MAX_LENGTH))
    isbn: Mapped[str | None] = mapped_column(String(ISBN_LENGTH))
    publisher: Mapped[str | None] = mapped_column(String(PUBLISHER_MAX_LENGTH))
    published_year: Mapped[int | None] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    search: Mapped[str] = mapped_column(Text, Computed(SEARCH_EXPRESSION, persisted=True))

    __table_args__ = (
        CheckConstraint("char_length(name) >= 1", name="name_not_empty"),
        CheckConstraint("char_length(author) >= 1", name="author_not_empty"),
        CheckConstraint("isbn ~ '^97[89][0-9]{10}$'", name="isbn_13"),
        CheckConstraint(
            f"published_year BETWEEN {YEAR_MIN} AND {YEAR_MAX}", name="published_year_range"
        ),
        CheckConstraint(f"pages BETWEEN {PAGES_MIN} AND {PAGES_MAX}", name="pages_range"),
        # The duplicate policy: an ISBN identifies one book; books without one are unique by
        # case-insensitive (name, author).
        Index("uq_book_isbn", "isbn", unique=True),
        Index(
            "uq_book_name_author_without_isbn",
            func.lower(text("name")),
            func.lower(text("author")),
            unique=True,
            postgresql_where=text("isbn IS NULL"),
        ),
        Index("ix_book_lower_name", func.lower(text("name"))),
        Index("ix_book_lower_author", func.lower(text("author"))),
        Index(
            "ix_book_search",
            SEARCH_COLUMN,
            postgresql_using="gin",
            postgresql_ops={SEARCH_COLUMN: "gin_trgm_ops"},
        ),
    )
