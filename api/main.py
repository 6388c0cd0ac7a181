"""``create_app(settings)``: the FastAPI app and, in its lifespan, the store and the coordinator."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from nas.config import Settings


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
        app.state.coordinator = Coordinator(settings, app.state.sessions)
        app.state.coordinator.start()
        try:
            yield
        finally:
            app.state.coordinator.stop()
            engine.dispose()

    from api.routes import health, jobs

    app = FastAPI(title="hwnas", version="0.1.0", lifespan=lifespan, description=__doc__)
    app.include_router(jobs.router)
    app.include_router(health.router)
    return app
