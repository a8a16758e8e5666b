"""HTTP details shared by the routes: JSON bodies as bytes, ETags and conditional headers."""

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


def parse_if_match(header: str | None) -> list[int] | None:
    """Versions the client accepts; None when any version will do (no header, or `*`)."""
    if header is None or header.strip() == "*":
        return None
    versions = []
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if tag.startswith("v") and tag[1:].isdigit() and len(tag) < 12:
            versions.append(int(tag[1:]))
    return versions


def none_match(header: str | None, current: str) -> bool:
    """True when If-None-Match names the current ETag, so a 304 is the answer."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or current in tags
