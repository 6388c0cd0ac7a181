"""One coordinator per database: the heartbeat row is a lease (compare-and-swap in the store).

The holder renews it every ``BEAT_S``; the API calls the coordinator gone after ``HEARTBEAT_STALE_S``.
A standby takes the lease when the holder releases it, when the holder is a dead pid on this host
(kill -9 leaves its row behind), or when the row is older than ``HEARTBEAT_STALE_S``.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session, sessionmaker

from nas.store import repo
from nas.store.models import utcnow

BEAT_S = 2.0  # seconds between heartbeats
HEARTBEAT_STALE_S = 15.0


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has this pid (a coordinator on this host that died by kill -9
    leaves its lease behind; a standby here can tell it is gone without waiting for it to age)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """This process's claim on the coordinator lease; ``take`` is also the heartbeat."""

    def __init__(self, sessions: sessionmaker[Session], nodes: Callable[[], list[dict[str, Any]]]) -> None:
        self.sessions = sessions
        self.nodes = nodes  # the live Ray nodes, written with every beat (the API's /workers)
        self.token = uuid.uuid4().hex
        self.started_at: datetime = utcnow()

    def take(self) -> Any:
        """Take or renew the lease: None if this process holds it now, else the holder's row (detached)."""
        with self.sessions.begin() as s:
            row = repo.coordinator_beat(s)
            here = socket.gethostname()
            gone = row is not None and row.host == here and row.token != self.token and not pid_alive(row.pid)
            holder = repo.take_lease(
                s, token=self.token, host=here, pid=os.getpid(), started_at=self.started_at,
                nodes=self.nodes(), stale_after_s=HEARTBEAT_STALE_S, holder_gone=gone,
            )  # fmt: skip
            if holder is not None:
                s.expunge(holder)
            return holder

    def release(self) -> None:
        """Give the lease up (a standby takes over at once instead of after ``HEARTBEAT_STALE_S``)."""
        with self.sessions.begin() as s:
            repo.release_lease(s, self.token)
