"""Seed data for the benchmark: 10,000 real-looking books with unique names, the same rows
in both databases (ours and the tutorial's), plus the inputs the wrk scripts draw from.

Deterministic (fixed random seed), so every run and every target sees the same data.
"""

import random
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BOOKS = 10_000
SEED = 6

_ADJECTIVES = (
    "Silent Hidden Broken Golden Last Lost Burning Quiet Distant Forgotten Crimson Winter "
    "Summer Secret Northern Southern Eastern Western Wild Gentle Bitter Sweet Hollow Iron "
    "Glass Paper Silver Shadowed Endless Little Great Midnight Morning Evening Empty Fallen "
    "Frozen Restless Wandering Sleeping Painted Crooked Ancient Modern Electric Invisible "
    "Borrowed Stolen Second Final Open Narrow Deep Bright Dark Scarlet Emerald Velvet Stone"
).split()
_NOUNS = (
    "Garden River Harbor Orchard Lighthouse Kingdom Library Mountain Forest Station Bridge "
    "Window Letter Promise Mirror Island Valley Voyage Archive Compass Lantern Meadow Tower "
    "Cathedral Carnival Empire Frontier Journey Labyrinth Machine Ocean Orchestra Palace "
    "Prairie Railway Season Shore Storm Symphony Theory Thread Village Winter Wolf Cartographer "
    "Apprentice Alchemist Daughter Keeper Stranger Witness Gardener Astronomer Clockmaker "
    "Translator Beekeeper Navigator Widow Pilgrim Orphan Weaver Physician Sailor"
).split()
_PLACES = (
    "Lisbon Kyoto Prague Marrakesh Oslo Vienna Havana Dublin Calcutta Odessa Trieste Quebec "
    "Istanbul Cairo Lima Bergen Tangier Samarkand Valparaiso Zanzibar Avalon Eldoria Kestrel "
    "Thornfield Ashbury Wrenfield Blackmoor Greywater Highgarden Larkspur"
).split()
_PATTERNS = (
    "The {adj} {noun}",
    "{noun} of {place}",
    "The {noun} of {place}",
    "A {adj} {noun}",
    "The {noun}'s {noun2}",
    "{adj} {noun} in {place}",
    "Return to {place}",
    "The Last {noun} of {place}",
    "Notes from the {adj} {noun}",
    "Beyond the {adj} {noun}",
)
_FIRST = (
    "Ana Amara Benedikt Camille Chidi Dmitri Elena Farah Gabriel Hannah Ines Jun Kofi Lars "
    "Leila Mateo Mei Nadia Oskar Priya Rafael Sana Tomas Ursula Valentina Wen Yusuf Zofia "
    "Agnes Bruno Clara Desmond Esther Felix Greta Hugo Ingrid Jonah Katya Luca Margit Nils "
    "Olga Pablo Rosa Stellan Tove Viktor"
).split()
_LAST = (
    "Adeyemi Albrecht Barros Castellanos Dubois Eriksen Fitzgerald Haddad Ishikawa Jansen "
    "Kowalski Lindqvist Moreau Nakamura Okafor Petrov Quintero Rossi Sandoval Takahashi "
    "Underwood Varga Whitfield Xu Yamamoto Zielinski Abernathy Brandt Carvalho Delacroix "
    "Eklund Ferreira Gallagher Holloway Ivanova Kaminski Laurent Mbeki Novak Oyelaran"
).split()
_PUBLISHERS = (
    "Harbor & Finch",
    "Northlight Press",
    "Blue Heron Books",
    "Meridian House",
    "Foxglove Editions",
    "Atlas & Quill",
    "Granite Street",
    "Paper Lantern",
)

# Substrings for `GET /books?q=`: words of the titles and authors, lower-cased; each matches
# roughly 1% of the rows, so the search returns a full page of 20.
SEARCH_TERMS = tuple(
    word.lower() for word in (*_ADJECTIVES[:12], *_NOUNS[:12], *_PLACES[:8], *_LAST[:8])
)


@dataclass(frozen=True)
class Book:
    name: str
    author: str
    isbn: str
    publisher: str
    published_year: int
    pages: int


def books(count: int = BOOKS) -> list[Book]:
    rng = random.Random(SEED)
    names: dict[str, None] = {}
    while len(names) < count:
        names.setdefault(_title(rng), None)
    return [
        Book(
            name=name,
            author=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            isbn=_isbn13(978_000_000_000 + index * 7919 % 1_000_000_000),
            publisher=rng.choice(_PUBLISHERS),
            published_year=rng.randint(1850, 2025),
            pages=rng.randint(80, 1200),
        )
        for index, name in enumerate(names)
    ]


def _title(rng: random.Random) -> str:
    title = rng.choice(_PATTERNS).format(
        adj=rng.choice(_ADJECTIVES),
        noun=rng.choice(_NOUNS),
        noun2=rng.choice(_NOUNS),
        place=rng.choice(_PLACES),
    )
    # A volume number now and then, as real catalogues have; also widens the name space.
    return title if rng.random() < 0.7 else f"{title}, Volume {rng.randint(2, 9)}"


def _isbn13(first12: int) -> str:
    digits = str(first12)
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def ours_rows(data: list[Book]) -> Iterator[tuple[object, ...]]:
    for b in data:
        yield (b.name, b.author, b.isbn, b.publisher, b.published_year, b.pages)


def tutorial_rows(data: list[Book]) -> Iterator[tuple[object, ...]]:
    # The tutorial's table has no ISBN column.
    for b in data:
        yield (b.name, b.author, b.publisher, b.published_year, b.pages)


def write_wrk_inputs(data: list[Book], directory: Path) -> None:
    """One URL-encoded value per line: wrk's Lua reads these at start."""
    directory.mkdir(parents=True, exist_ok=True)
    encoded = (urllib.parse.quote(b.name, safe="") for b in data)
    (directory / "names.txt").write_text("\n".join(encoded) + "\n")
    (directory / "terms.txt").write_text("\n".join(SEARCH_TERMS) + "\n")


async def seed_ours(conn: object, data: list[Book]) -> None:
    await conn.copy_records_to_table(  # type: ignore[attr-defined]
        "book",
        records=list(ours_rows(data)),
        columns=["name", "author", "isbn", "publisher", "published_year", "pages"],
    )
    await conn.execute("ANALYZE book")  # type: ignore[attr-defined]


async def seed_tutorial(conn: object, data: list[Book]) -> None:
    await conn.copy_records_to_table(  # type: ignore[attr-defined]
        "books",
        records=list(tutorial_rows(data)),
        columns=["book_name", "author", "publisher", "published_year", "pages"],
    )
    await conn.execute("ANALYZE books")  # type: ignore[attr-defined]
