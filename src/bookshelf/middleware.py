"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a copy per request).

`RequestContext` gives every request an id (X-Request-ID honoured when sane, else made up),
caps the body size, including chunked bodies with no Content-Length, bounds the wait for each
part of the body, answers HEAD as a GET without its body, and writes one JSON log line per
request. It never logs bodies, query strings or headers.
"""

import asyncio
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookshelf.logs import AccessLog

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.access_log = AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = 500
        method = scope["method"]
        if method == "HEAD":
            # HEAD is GET without the body (RFC 9110, 9.3.2), for every GET route: the routes
            # see a GET, and the body is dropped here (servers drop it too; this is for any).
            scope = {**scope, "method": "GET"}

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif method == "HEAD":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(scope, self._limited(scope, receive), send_with_id)
        finally:
            self.access_log.write(
                {
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request_id,
                }
            )

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:

            async def refuse() -> Message:
                raise HTTPException(413, f"The body exceeds {limit} bytes.")

            return refuse
        received = 0

        async def counting() -> Message:
            nonlocal received
            try:
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "The body did not arrive in time.") from None
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"The body exceeds {limit} bytes.")
            return message

        return counting


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
