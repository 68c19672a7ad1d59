"""Run `posekit serve` as a child process on 127.0.0.1 (for tests, benchmarks and scripts): ``with
running_server(["--model", "movenet-lightning"]) as server: ...`` waits for /healthz, gives ``server.url`` and
``server.pid``, and stops the process on exit (SIGINT, then SIGKILL after a grace period)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from posekit.errors import PosekitError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def health(self, timeout: float = 2.0) -> dict | None:
        """/healthz's answer, or None while the server does not answer."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def rss_mb(self) -> float:
        """Resident memory of the server process now (MiB; Linux)."""
        return _status_kb(self.pid, "VmRSS") / 1024

    def peak_mb(self) -> float:
        """Peak resident memory of the server process so far (MiB; Linux)."""
        return _status_kb(self.pid, "VmHWM") / 1024

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace)


def _status_kb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def start_server(args: Sequence[str] = (), port: int | None = None, log: Path | None = None,
                 startup_timeout: float = 120.0, env: dict[str, str] | None = None) -> Server:
    """Start `posekit serve --host 127.0.0.1 --port PORT *args` and wait until /healthz answers."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "posekit.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    child_env = {**os.environ, **(env or {})}
    root = str(Path(__file__).resolve().parents[2])  # this checkout first, as the parent process has it
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, child_env.get("PYTHONPATH")) if p)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                               env=child_env)
    server = Server(process, port, log)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PosekitError(f"posekit serve exited with code {process.returncode}"
                               + (f"; see {log}" if log else ""))
        if server.health(0.5) is not None:
            return server
        time.sleep(0.2)
    server.stop()
    raise PosekitError(f"posekit serve did not answer /healthz within {startup_timeout:g} s")


@contextlib.contextmanager
def running_server(args: Sequence[str] = (), **options) -> Iterator[Server]:
    """`start_server` as a context manager; the server is stopped on exit."""
    server = start_server(args, **options)
    try:
        yield server
    finally:
        server.stop()
