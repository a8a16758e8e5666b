"""Facts about the `book` table that the API shares with the schema.

Kept apart from `models` so the request path never imports SQLAlchemy or Alembic (they cost
most of a second of start-up), while both the table and the API read their limits from here.
"""

NAME_MAX_LENGTH = 300
AUTHOR_MAX_LENGTH = 200
PUBLISHER_MAX_LENGTH = 200
ISBN_LENGTH = 13
YEAR_MIN, YEAR_MAX = -5000, 2100
PAGES_MIN, PAGES_MAX = 1, 100_000
ID_MAX = 2**63 - 1  # bigint

# `q` searches the stored generated column `search`, this expression, under a trigram GIN
# index. Stored, so a search that walks the table in id order (the planner's choice for common
# terms) compares a ready string instead of lowering and joining two columns per row: half
# the database's time per search at 10,000 books.
SEARCH_COLUMN = "search"
SEARCH_EXPRESSION = "lower(name || ' ' || author)"

# The migration this code needs; /health/ready compares the database's with it.
# A test checks that it is the head of the Alembic history.
SCHEMA_REVISION = "0001"
