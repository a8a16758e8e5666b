"""Reading catalogue files: format detection and the mapping of each variant to book dicts."""

from pathlib import Path
from typing import Any

import pytest

from bookshelf.catalogue import CatalogueError, parse_catalogue, read_catalogue

FIXTURES = Path(__file__).parent / "fixtures" / "catalogues"

LEFT_HAND = {
    "name": "The Left Hand of Darkness",
    "author": "Ursula K. Le Guin",
    "isbn": "9780441478125",
    "publisher": "Ace",
    "pages": 304,
    "published_year": 1987,
}
DUNE = {
    "name": "Dune (Dune #1)",
    "author": "Frank Herbert",
    "isbn": "9780441172719",
    "publisher": "Ace",
    "pages": 604,
    "published_year": 1990,
}
FOUNDATION = {
    "name": "Foundation (Foundation #1)",
    "author": "Isaac Asimov",
    "isbn": "9780553803716",
    "publisher": "Bantam",
    "pages": 244,
    "published_year": 2004,
}


def books(name: str) -> list[dict[str, Any]]:
    return [entry.book for entry in read_catalogue(FIXTURES / name).entries]


@pytest.mark.parametrize(
    "name",
    ["goodreads-24-columns.csv", "goodreads-27-columns.csv", "goodreads-33-columns.csv"],
)
def test_read_goodreads_variant_maps_the_bibliographic_columns(name: str) -> None:
    """It reads every header variant by column name, whatever the count."""
    catalogue = read_catalogue(FIXTURES / name)
    assert catalogue.kind == "Goodreads export"
    assert [entry.book for entry in catalogue.entries] == [LEFT_HAND, DUNE, FOUNDATION]
    assert [entry.line for entry in catalogue.entries] == [2, 3, 4]


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.*sv")))
def test_read_catalogue_never_reads_personal_columns(name: str) -> None:
    """Ratings, shelves, reviews and notes (marked PRIVATE in the fixtures) are left behind."""
    for book in books(name):
        assert set(book) <= {"name", "author", "isbn", "publisher", "published_year", "pages"}
        assert not any("PRIVATE" in str(value) for value in book.values())


def test_read_goodreads_unquotes_isbns_and_prefers_isbn13() -> None:
    isbns = [book.get("isbn") for book in books("goodreads-isbn-quoting.csv")]
    assert isbns == [
        "9780441478125",  # ="..." in both columns: the ISBN13
        None,  # ="" in both
        None,  # empty in both
        "0441172717",  # ISBN13 empty: the ISBN-10, which the service turns into an ISBN-13
        "9780553803717",  # bad checksum: passed on to be reported, not replaced by the ISBN-10
        "9780756404734",  # unquoted
    ]


def test_read_goodreads_collapses_spacing_and_keeps_quotes_and_commas() -> None:
    fire_engine, wise_mans_fear, lexicographer = books("goodreads-messy-text.csv")
    assert fire_engine["name"] == "The Fire Engine That Disappeared (Martin Beck, #5)"
    assert fire_engine["author"] == "Maj Sjöwall"
    assert wise_mans_fear["name"] == "The Wise Man's Fear (The Kingkiller Chronicle, #2)"
    assert lexicographer == {
        "name": 'The Lexicographer\'s Dilemma: The Evolution of "Proper" English',
        "author": "Jack Lynch",
        "publisher": "W. W. Norton Company",
    }


def test_read_goodreads_counts_lines_of_multiline_records() -> None:
    """Line numbers point at where each record starts, so reports can be followed."""
    entries = read_catalogue(FIXTURES / "goodreads-messy-text.csv").entries
    assert [entry.line for entry in entries] == [2, 3, 5]


def test_read_goodreads_handles_bom_and_crlf() -> None:
    catalogue = read_catalogue(FIXTURES / "goodreads-bom-crlf.csv")
    assert catalogue.kind == "Goodreads export"
    assert [entry.book for entry in catalogue.entries] == [LEFT_HAND, FOUNDATION]


def test_read_goodreads_strips_padding_around_columns() -> None:
    dune, fellowship = books("goodreads-padded.csv")
    assert dune == DUNE
    assert fellowship == {
        "name": "The Fellowship of the Ring (The Lord of the Rings, #1)",
        "author": "J.R.R. Tolkien",
        "isbn": "9780345339706",
        "publisher": "Del Rey",
        "pages": 398,
        "published_year": 1986,
    }


def test_read_plain_csv_maps_our_columns_and_leaves_bad_values_to_validation() -> None:
    catalogue = read_catalogue(FIXTURES / "plain.csv")
    assert catalogue.kind == "CSV"
    left, dune, no_pages = [entry.book for entry in catalogue.entries]
    assert left["isbn"] == "978-0-441-47812-5"
    assert dune["publisher"] == "Ace, an imprint"
    assert no_pages == {
        "name": "A Book Without Pages",
        "author": "Some Author",
        "published_year": 2001,
        "pages": "many",
    }


def test_read_plain_csv_accepts_title_and_year_and_ignores_other_columns() -> None:
    assert books("plain-aliases.csv") == [
        {
            "name": "Foundation",
            "author": "Isaac Asimov",
            "isbn": "9780553803716",
            "published_year": 2004,
            "pages": 244,
        },
        {"name": "The Dispossessed", "author": "Ursula K. Le Guin", "published_year": 1974},
    ]


def test_read_json_lines_reports_unreadable_lines_and_keeps_the_rest() -> None:
    catalogue = read_catalogue(FIXTURES / "books.jsonl")
    assert catalogue.kind == "JSON Lines"
    lines = {entry.line: entry for entry in catalogue.entries}
    assert sorted(lines) == [1, 2, 4, 5, 6]
    assert lines[2].book == {
        "name": "Foundation",
        "author": "Isaac Asimov",
        "published_year": 2004,
        "pages": 244,
    }
    assert lines[4].errors[0]["message"] == "not valid JSON"
    assert lines[5].errors[0]["message"] == "not a JSON object"
    assert lines[6].book["pages"] == "many"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"Dear reader,\nthis is a letter, not a catalogue.\n", "no recognisable header"),
        (b"Title;Author;ISBN\nDune;Frank Herbert;\n", "no recognisable header"),
        ("name,author\nCaf\u00e9,Someone\n".encode("latin-1"), "not UTF-8"),
        ("name,author\n".encode("utf-16"), "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (b'"name,author\nDune,Frank Herbert\n', "no recognisable header"),
        (b'{"name": "Dune", "author": \n', "not JSON Lines"),
        (b'{"title_of_book": "Dune"}\n', "no name and author"),
    ],
)
def test_parse_catalogue_refuses_unknown_formats_saying_what_was_expected(
    data: bytes, says: str
) -> None:
    with pytest.raises(CatalogueError) as raised:
        parse_catalogue(data, "upload.csv")
    message = str(raised.value)
    assert says in message
    assert message.startswith("upload.csv")
    assert "expected a Goodreads library export" in message


def test_read_catalogue_refuses_a_missing_file() -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        read_catalogue(FIXTURES / "no-such-file.csv")


def test_read_csv_reports_a_stray_quote_as_one_invalid_record_and_reads_on() -> None:
    """It never stores the lines a stray quote swallowed as one book."""
    data = (
        b"name,author,pages\nA,B,1\n"
        b'"Stray,Auth,2\nSwallowed,Auth,3\nQ,"Auth Q",4\n'  # the quote closes at "Auth Q
        b"E,F,6\n"
    )
    entries = parse_catalogue(data).entries
    assert [e.line for e in entries] == [2, 3, 6]
    assert not entries[0].errors and not entries[2].errors
    assert "unbalanced quote seems to join lines 3-5" in entries[1].errors[0]["message"]


def test_read_csv_reports_rows_joined_by_a_quote_that_closes_cleanly() -> None:
    # Here the swallowing quote closes right before a comma: valid CSV, but one "name" now
    # holds whole rows of the file.
    data = b'name,author,pages\nA,B,1\n"Stray,Auth,2\nSwallowed,Auth,3",Auth,4\nE,F,6\n'
    entries = parse_catalogue(data).entries
    assert [e.line for e in entries] == [2, 3, 5]
    assert "unbalanced quote seems to join lines 3-4" in entries[1].errors[0]["message"]
    assert not entries[0].errors and not entries[2].errors


def test_read_csv_reports_a_quote_never_closed_and_keeps_the_rows_before() -> None:
    entries = parse_catalogue(b'name,author\nA,B\n"never closed,C\nD,E\n').entries
    assert entries[0].book == {"name": "A", "author": "B"}
    assert "unbalanced quote seems to join lines 3-4" in entries[1].errors[0]["message"]


def test_read_csv_keeps_numbers_too_long_for_any_range_as_text_for_validation() -> None:
    data = b"name,author,pages\nA,B,99999999999999999999\nC,D," + b"9" * 5000 + b"\n"
    pages = [entry.book["pages"] for entry in parse_catalogue(data).entries]
    assert pages == ["9" * 20, "9" * 5000]


def test_read_csv_takes_fields_over_the_csv_modules_default_limit() -> None:
    review = "x" * 300_000
    data = f"name,author,review\nDune,Frank Herbert,{review}\n".encode()
    assert [e.book for e in parse_catalogue(data).entries] == [
        {"name": "Dune", "author": "Frank Herbert"}
    ]


def test_read_json_lines_splits_lines_at_newlines_only() -> None:
    data = '{"name": "Line\u2028Separator", "author": "A"}\n{"name": "B", "author": "C"}\n'
    entries = parse_catalogue(data.encode()).entries
    # The separator is whitespace, so tidying makes it a space; it no longer splits the line.
    assert [(e.line, e.book["name"]) for e in entries] == [(1, "Line Separator"), (2, "B")]
