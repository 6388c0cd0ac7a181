"""Typed dependencies: the session, the settings and the coordinator live on ``app.state``.

The ones that only read ``app.state`` are ``async``: FastAPI runs a plain ``def`` dependency in its
thread pool, and a hop there per dependency per request is what a burst of polls queues on."""

from __future__ import annotations

from typing import Annotated, AsyncIterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.cache import RevisionCache
from nas.config import Settings
from api.coordination import CoordinatorLink


async def _session(request: Request) -> AsyncIterator[Session]:
    """A session per request. Opening one does no I/O (it connects on first use), so it happens on the
    event loop; closing may roll back on the connection, so that goes to the thread pool."""
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _cache(request: Request) -> RevisionCache:
    return request.app.state.cache


async def _coordinator(request: Request) -> CoordinatorLink:
    return request.app.state.coordinator


SessionDep = Annotated[Session, Depends(_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CoordinatorDep = Annotated[CoordinatorLink, Depends(_coordinator)]
CacheDep = Annotated[RevisionCache, Depends(_cache)]
