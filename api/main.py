"""``create_app(settings)``: the FastAPI app and, in its lifespan, the store and the coordinator."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from api.cache import RevisionCache
from api.coordination import CoordinatorLink, CoordinatorProcess
from api.security import BodySizeLimit
from nas.config import Settings

log = logging.getLogger("hwnas")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from nas.coordinator import Coordinator
        from nas.store.db import make_engine, session_factory, upgrade

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_db_url()
        upgrade(url)
        engine = make_engine(url)
        app.state.settings = settings
        app.state.sessions = session_factory(engine)
        if not settings.auth_required():
            log.warning(
                "hwnas API is OPEN: no token is needed on %s (set HWNAS_AUTH=required and create tokens "
                "with `hwnas token create`)",
                settings.host,
            )
        coordinator, child = None, None
        if settings.coordinator == "thread":
            coordinator = Coordinator(settings, app.state.sessions)
            coordinator.start()
        elif settings.coordinator == "process":
            child = CoordinatorProcess(settings)
            await child.start()
        app.state.coordinator = CoordinatorLink(settings, coordinator)
        app.state.coordinator_process = child
        try:
            yield
        finally:
            if coordinator is not None:
                coordinator.stop()
            if child is not None:
                await child.stop()
            engine.dispose()

    from api.routes import dashboard, events, health, jobs, targets

    app = FastAPI(title="hwnas", version="0.1.0", lifespan=lifespan, description=__doc__)
    app.state.settings = settings
    app.state.cache = RevisionCache()
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    for module in (jobs, events, targets, health):
        app.include_router(module.router)
    dashboard.install(app)  # the pages at /, plotly.js and static files
    return app
