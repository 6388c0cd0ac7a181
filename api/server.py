"""Run the service in a background thread of this process, its coordinator a thread too unless the
settings name another mode (the demo and the end-to-end tests use it)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from api.main import create_app
from nas.config import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServiceThread:
    """``with ServiceThread(settings) as url:`` starts uvicorn, waits until it serves, stops it on exit."""

    def __init__(self, settings: Settings, *, startup_timeout: float = 120.0) -> None:
        if "coordinator" not in settings.model_fields_set:  # in this process unless the caller says otherwise
            settings = settings.model_copy(update={"coordinator": "thread"})
        self.settings = settings
        self.port = settings.port or free_port(settings.host)
        self.url = f"http://{settings.host}:{self.port}"
        config = uvicorn.Config(create_app(settings), host=settings.host, port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="hwnas-api", daemon=True)
        self.startup_timeout = startup_timeout

    def __enter__(self) -> str:
        from nas.ray_cluster import connect_ray

        if self.settings.coordinator == "thread":
            connect_ray(self.settings)  # in this (main) thread, not in the server's
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the hwnas service failed to start on {self.url}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hwnas service did not start within {self.startup_timeout:.0f}s")
            time.sleep(0.1)
        return self.url

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.should_exit = True
        self.thread.join(60)
