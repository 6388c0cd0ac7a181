"""Typed dependencies: the session, the settings and the coordinator live on ``app.state``."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.cache import RevisionCache
from nas.config import Settings
from nas.coordinator import Coordinator


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _cache(request: Request) -> RevisionCache:
    return request.app.state.cache


def _coordinator(request: Request) -> Coordinator:
    return request.app.state.coordinator


SessionDep = Annotated[Session, Depends(_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CoordinatorDep = Annotated[Coordinator, Depends(_coordinator)]
CacheDep = Annotated[RevisionCache, Depends(_cache)]
