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
    try:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                   env=child_env)
    finally:
        if log:
            out.close()  # the child has its own copy
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


@dataclass
class LoadReport:
    """What `load` measured: answers by status (and "connection" for failed connections), latencies (ms) of
    the 200 answers, the wall time."""

    clients: int
    seconds: float
    statuses: dict[str, int]
    latencies_ms: list[float]

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> dict[str, float | int | dict]:
        import numpy as np

        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([float("nan")])
        ok = self.statuses.get("200", 0)
        return {"clients": self.clients, "seconds": round(self.seconds, 1), "requests": self.requests,
                "ok": ok, "throughput_rps": round(ok / self.seconds, 2),
                "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1),
                "statuses": dict(sorted(self.statuses.items()))}


def load(url: str, images: Sequence[bytes], clients: int = 8, seconds: float = 30.0, path: str = "/v1/pose",
         timeout: float = 60.0) -> LoadReport:
    """``clients`` threads, each with its own keep-alive connection, post ``images`` (raw bytes, round-robin) to
    ``url + path`` back to back for ``seconds``; a bounded run (it stops by itself)."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    host = urlsplit(url)
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=timeout)
        i = offset
        while time.monotonic() < stop_at:
            body = images[i % len(images)]
            i += 1
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"content-type": "application/octet-stream"})
                response = conn.getresponse()
                response.read()
                key = str(response.status)
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                key = "connection"
                conn.close()
                time.sleep(0.05)
            ms = (time.perf_counter() - start) * 1000
            with lock:
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append(ms)
            if key == "503":
                time.sleep(0.05)  # what Retry-After asks, shortened
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + timeout + 5)
    return LoadReport(clients, time.monotonic() - began, statuses, latencies)
