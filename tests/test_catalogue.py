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
        (b'name,author\n"an unterminated quote' + b"." * 200_000, "not a readable CSV"),
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
