"""Create the book table, its duplicate policy and the indexes behind every filter.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trigram indexes make `q` (substring search) index-backed. RDS allows this extension.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "book",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("isbn", sa.String(13), nullable=True),
        sa.Column("publisher", sa.String(200), nullable=True),
        sa.Column("published_year", sa.Integer(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        # What `q` searches, kept by PostgreSQL (see columns.SEARCH_COLUMN).
        sa.Column(
            "search",
            sa.Text(),
            sa.Computed("lower(name || ' ' || author)", persisted=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_book"),
        sa.CheckConstraint("char_length(name) >= 1", name="ck_book_name_not_empty"),
        sa.CheckConstraint("char_length(author) >= 1", name="ck_book_author_not_empty"),
        sa.CheckConstraint("isbn ~ '^97[89][0-9]{10}$'", name="ck_book_isbn_13"),
        sa.CheckConstraint(
            "published_year BETWEEN -5000 AND 2100", name="ck_book_published_year_range"
        ),
        sa.CheckConstraint("pages BETWEEN 1 AND 100000", name="ck_book_pages_range"),
    )
    op.execute("CREATE UNIQUE INDEX uq_book_isbn ON book (isbn)")
    op.execute(
        "CREATE UNIQUE INDEX uq_book_name_author_without_isbn"
        " ON book (lower(name), lower(author)) WHERE isbn IS NULL"
    )
    op.execute("CREATE INDEX ix_book_lower_name ON book (lower(name))")
    op.execute("CREATE INDEX ix_book_lower_author ON book (lower(author))")
    op.execute("CREATE INDEX ix_book_search ON book USING gin (search gin_trgm_ops)")


def downgrade() -> None:
    op.drop_table("book")
