"""Text as the service stores it: trimmed, NFC-normalised, and storable by PostgreSQL."""

import unicodedata


def clean_text(value: str) -> str:
    """Trim and NFC-normalise; `ValueError` for characters a text column cannot hold.

    PostgreSQL rejects NUL in text, and a lone UTF-16 surrogate (valid in JSON's "\\ud800"
    escapes) cannot be encoded as UTF-8 at all; other control characters are refused because
    no book title or author contains them and they break every display.
    """
    for char in value:
        category = unicodedata.category(char)
        if category == "Cs":
            raise ValueError("contains an unpaired UTF-16 surrogate")
        if category == "Cc" and char not in "\t\n\r":
            raise ValueError(f"contains the control character U+{ord(char):04X}")
    return unicodedata.normalize("NFC", value).strip()


def ascii_digits(text: str) -> bool:
    """Only 0-9, at least one. Not str.isdigit alone: that accepts Arabic-Indic, fullwidth and
    superscript digits, which int() reads but the table's CHECKs and our ranges do not mean."""
    return text.isascii() and text.isdigit()
