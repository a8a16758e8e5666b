"""ISBN-10 and ISBN-13: checksum validation and conversion to the ISBN-13 we store."""

from bookshelf.text import ascii_digits

_SEPARATORS = str.maketrans("", "", "- ")


def to_isbn13(raw: str) -> str:
    """The ISBN-13 for `raw` (hyphens and spaces allowed); `ValueError` if it is not an ISBN."""
    digits = raw.translate(_SEPARATORS).upper()
    if len(digits) == 10:
        return _from_isbn10(digits)
    if len(digits) == 13 and ascii_digits(digits) and digits.startswith(("978", "979")):
        if _isbn13_check_digit(digits[:12]) != digits[12]:
            raise ValueError("ISBN-13 checksum does not match")
        return digits
    raise ValueError("not an ISBN: expected 10 or 13 digits (ISBN-13 starting 978 or 979)")


def _from_isbn10(digits: str) -> str:
    body, check = digits[:9], digits[9]
    if not ascii_digits(body) or not (ascii_digits(check) or check == "X"):
        raise ValueError("ISBN-10 must be 9 digits followed by a digit or X")
    total = sum((10 - i) * int(d) for i, d in enumerate(body)) + (
        10 if check == "X" else int(check)
    )
    if total % 11:
        raise ValueError("ISBN-10 checksum does not match")
    return "978" + body + _isbn13_check_digit("978" + body)


def _isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)
