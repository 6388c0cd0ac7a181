"""A real multi-node Ray cluster on this machine, started the way docker-compose.yml starts one.

``ray start --head`` plus ``hwnas worker`` nodes and ``hwnas serve --ray-address``, each a
separate process group with its own ports (other Ray clusters may run on this machine: never
``ray stop``, which kills every Ray process of the host). Token authentication is on, with a
token made for the cluster and passed through ``RAY_AUTH_TOKEN``, as across real machines.
Used by ``tests/cluster/`` and ``bench/cluster.py``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_pg_database() -> str:
    """A fresh PostgreSQL database on 127.0.0.1:5432 (trust auth); returns its SQLAlchemy URL."""
    import psycopg

    name = f"hwnas_cluster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    descendants: set[int] = field(default_factory=set)

    def remember_tree(self) -> None:
        """Ray daemons may leave the process group: remember every descendant so stop() finds them."""
        try:
            self.descendants |= {c.pid for c in psutil.Process(self.popen.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def tree(self) -> list[psutil.Process]:
        self.remember_tree()
        procs = []
        for pid in {self.popen.pid, *self.descendants}:
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        return procs

    def kill(self, sig: int = signal.SIGKILL) -> None:
        procs = self.tree()
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class LocalCluster:
    """Head, workers and the service as real processes; ``stop()`` ends every one of them."""

    def __init__(self, data_dir: Path, db_url: str, *, env: dict[str, str] | None = None) -> None:
        # Ray's unix socket paths must stay short: the temp dir lives directly under /tmp
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="hwc-", dir="/tmp"))
        self.data_dir = data_dir
        self.db_url = db_url
        self.logs = data_dir / "cluster-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.token = secrets.token_hex(24)
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_raylet_start_wait_time_s": "120",  # two cores shared with other work: registration can be slow
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HWNAS_DATA_DIR": str(data_dir),
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.procs: list[Proc] = []
        self.workers: dict[str, list[Proc]] = {}
        self.url: str | None = None

    # ---- processes -------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str]) -> Proc:
        log = self.logs / f"{name}-{len(self.procs)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def _node_ports(self) -> list[str]:
        return [
            f"--temp-dir={self.ray_tmp}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            "--object-store-memory=300000000",
        ]

    def start_head(self) -> str:
        self._spawn(
            "head",
            [
                str(BIN / "ray"), "start", "--head", f"--port={self.port}", "--num-cpus=0",
                "--include-dashboard=false", f"--dashboard-port={free_port()}", "--disable-usage-stats", "--block",
                *self._node_ports(),
            ],
        )
        self._wait_port(self.port, 90)
        return self.address

    def add_worker(self, target: str, *, num_cpus: int = 1, extra_targets: list[str] | None = None) -> Proc:
        more = [a for t in extra_targets or [] for a in ("--target", t)]
        cmd = [
            str(BIN / "hwnas"), "worker", "--address", self.address, "--target", target, *more,
            "--num-cpus", str(num_cpus), "--data-dir", str(self.data_dir), "--", *self._node_ports(),
        ]
        proc = self._spawn(f"worker-{target}", cmd)
        self.workers.setdefault(target, []).append(proc)
        return proc

    def serve(self, **env: str) -> str:
        port = free_port()
        cmd = [
            str(BIN / "hwnas"), "serve", "--ray-address", self.address, "--db", self.db_url,
            "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(self.data_dir),
        ]
        self.env.update(env)
        self._spawn("serve", cmd)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/ready", timeout=2).status_code == 200:  # its coordinator has joined Ray
                    return self.url
            except httpx.HTTPError:
                pass
            self._check_alive("serve")
            time.sleep(0.5)
        raise TimeoutError(f"hwnas serve did not answer in 120 s:\n{self.proc('serve').tail()}")

    def proc(self, name: str) -> Proc:
        return next(p for p in reversed(self.procs) if p.name == name)

    def _check_alive(self, name: str) -> None:
        p = self.proc(name)
        if p.popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.popen.returncode}:\n{p.tail()}")

    def _wait_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            self._check_alive("head")
            time.sleep(0.3)
        raise TimeoutError(f"the Ray head did not open port {port} in {timeout} s:\n{self.proc('head').tail()}")

    # ---- what the service sees -----------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        assert self.url
        return httpx.get(f"{self.url}/api/v1/workers", timeout=10).raise_for_status().json()

    def wait_for_targets(self, targets: dict[str, int], timeout: float = 120) -> list[dict[str, Any]]:
        """Until the live nodes serve ``targets`` (name -> how many nodes); returns the nodes."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.nodes()
            counts = {t: sum(t in n["targets"] for n in nodes) for t in targets}
            if counts == targets:
                return nodes
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.tail(15)}" for p in self.procs if p.name.startswith("worker"))
                raise TimeoutError(f"nodes serve {counts}, expected {targets}:\n{logs}")
            time.sleep(0.5)

    def remember_trees(self) -> None:
        for p in self.procs:
            p.remember_tree()

    # ---- the end -----------------------------------------------------------------------------
    def stop(self) -> None:
        """SIGTERM every process group started here (service first, head last), then SIGKILL what is left."""
        self.remember_trees()
        for p in sorted(self.procs, key=lambda p: {"serve": 0, "head": 2}.get(p.name, 1)):
            p.kill(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(q.is_running() and q.status() != psutil.STATUS_ZOMBIE for p in self.procs for q in p.tree()):
            time.sleep(0.3)
        for p in self.procs:
            p.kill(signal.SIGKILL)
            try:
                p.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if not os.environ.get("HWNAS_KEEP_RAY_LOGS"):
            shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
