"""HTTP details shared by the routes: JSON bodies as bytes, ETags and conditional headers."""

import re
from typing import Any

import orjson
from starlette.responses import Response


class JsonBytes(Response):
    """JSON encoded by orjson; skips FastAPI's slower re-validation of what we built."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def etag(version: int) -> str:
    return f'"v{version}"'


# Our ETags: a quoted "v" and the version, an int4 in the table.
_STRONG_TAG = re.compile(r'"v([0-9]{1,10})"')
_VERSION_MAX = 2**31 - 1


def parse_if_match(header: str | None) -> list[int] | None:
    """Versions the client accepts; None when any version will do (no header, or `*`).

    If-Match compares strongly (RFC 9110, 13.1.1): weak tags and anything that is not one of
    our tags match nothing, so they end in 412 rather than in a query with a bad number.
    """
    if header is None or header.strip() == "*":
        return None
    versions = []
    for tag in header.split(","):
        match = _STRONG_TAG.fullmatch(tag.strip())
        if match and int(match[1]) <= _VERSION_MAX:
            versions.append(int(match[1]))
    return versions


def none_match(header: str | None, current: str) -> bool:
    """True when If-None-Match names the current ETag, so a 304 is the answer."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or current in tags
