"""Bearer-token scopes for the API and a request-body size cap.

Reads need a read or write token, writes a write token, when auth is on (``Settings.auth``).
Tokens are compared by hash and never logged or echoed back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nas.store.tokens import check_token

_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _scope_of(request: Request, creds: HTTPAuthorizationCredentials | None) -> str:
    """The token's scope; the store is read in the thread pool, and only when tokens are required
    (an open service answers without leaving the event loop)."""
    if not request.app.state.settings.auth_required():
        return "write"
    if creds is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})

    def lookup() -> str | None:
        with request.app.state.sessions.begin() as s:
            return check_token(s, creds.credentials)

    scope = await run_in_threadpool(lookup)
    if scope is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return scope


async def require_read(request: Request, creds: Credentials) -> None:
    await _scope_of(request, creds)


async def require_write(request: Request, creds: Credentials) -> None:
    if await _scope_of(request, creds) != "write":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token is read-only; writes need a write token")


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)


class BodySizeLimit:
    """Pure ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = b'{"detail":"request body exceeds %d bytes"}' % self.limit
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
