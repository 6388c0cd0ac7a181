"""Server-sent events: the append-only event table streamed, resumable with ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from api.security import ReadAccess
from nas.store.models import Event

router = APIRouter(prefix="/api/v1", tags=["events"])
POLL_S = 0.5
HEARTBEAT_S = 15.0


def _read(sessions, after: int, job_id: str | None, limit: int = 500) -> list[Event]:  # type: ignore[no-untyped-def]
    with sessions() as s:
        q = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
        if job_id:
            q = q.where(Event.job_id == job_id)
        return list(s.scalars(q))


def _latest(sessions, job_id: str | None) -> int:  # type: ignore[no-untyped-def]
    with sessions() as s:
        q = select(func.max(Event.id))
        if job_id:
            q = q.where(Event.job_id == job_id)
        return s.scalar(q) or 0


def format_event(e: Event) -> str:
    data = {"job_id": e.job_id, "kind": e.kind, "at": e.created_at.isoformat(), **e.payload}
    return f"id: {e.id}\nevent: {e.kind}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/events", response_class=StreamingResponse, dependencies=[ReadAccess])
async def events(
    request: Request,
    job_id: str | None = Query(None, max_length=64),
    last_event_id: int | None = Header(None, alias="Last-Event-ID", ge=0),
    since: Literal["start", "now"] = Query("start", description="without Last-Event-ID: replay from the first event, or only new ones"),
) -> StreamingResponse:
    """``text/event-stream`` of job and trial changes; reconnect with ``Last-Event-ID`` to resume."""
    sessions = request.app.state.sessions

    async def stream() -> AsyncIterator[str]:
        if last_event_id is not None:
            after = last_event_id
        else:
            after = await run_in_threadpool(_latest, sessions, job_id) if since == "now" else 0
        idle = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            batch = await run_in_threadpool(_read, sessions, after, job_id)
            for e in batch:
                after = e.id
                yield format_event(e)
            if batch:
                idle = 0.0
                continue
            await asyncio.sleep(POLL_S)
            idle += POLL_S
            if idle >= HEARTBEAT_S:
                idle = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
