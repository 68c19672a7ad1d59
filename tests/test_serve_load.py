"""Load and fault tests against a real `posekit serve` on 127.0.0.1 (bounded in count and time): concurrent
clients posting real photos while hostile and broken clients do their worst; the server answers each with its
documented status and keeps serving the others.  Run with ``pytest -m load``."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.load, pytest.mark.slow]

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
MODEL = "movenet-lightning"
#: Answers a well-behaved client may get: success and the documented back-pressure answer.
EXPECTED = {"200", "503"}


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))


def post(url: str, body: bytes, path: str = "/v1/pose", timeout: float = 60) -> tuple[int, dict]:
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/octet-stream"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    files = [DATA / "messi5.jpg", DATA / "basketball1.png"]
    if not all(f.is_file() for f in files):
        pytest.skip(f"{DATA} not found (apt install opencv-doc)")
    pytest.importorskip("fastapi")
    return [f.read_bytes() for f in files]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from posekit.serve.launch import start_server

    log = tmp_path_factory.mktemp("serve") / "server.log"
    s = start_server(["--model", MODEL, "--workers", "1", "--queue", "8", "--read-timeout", "2"], log=log)
    yield s
    s.stop()


def test_concurrent_clients_get_answers_and_memory_stays_flat(server, photos):
    from posekit.serve.launch import load

    load(server.url, photos, clients=2, seconds=2)  # warm-up
    first = load(server.url, photos, clients=8, seconds=6)
    rss_mid = server.rss_mb()
    second = load(server.url, photos, clients=8, seconds=6)
    rss_end = server.rss_mb()
    for report in (first, second):
        assert set(report.statuses) <= EXPECTED, report.statuses
        assert report.statuses.get("200", 0) >= 5, report.statuses
    assert rss_end - rss_mid < 50, (rss_mid, rss_end)  # MiB: no growth with the number of requests served
    assert server.health()["status"] == "ok"


def test_hostile_and_broken_clients_get_their_answers_while_others_are_served(server, photos):
    from websockets.sync.client import connect

    ws_url = server.url.replace("http", "ws") + "/v1/stream"
    good: list[int] = []
    stop = threading.Event()

    def good_client() -> None:
        while not stop.is_set():
            good.append(post(server.url, photos[0])[0])

    bystander = threading.Thread(target=good_client, daemon=True)
    bystander.start()
    try:
        # 50 MB upload -> 413 with a JSON error
        status, body = post(server.url, b"\0" * (50 * 1024 * 1024))
        assert (status, body["status"]) == (413, 413) and "too large" in body["error"]
        # a 30000 x 30000 PNG header -> 413 before any pixel is decoded
        status, body = post(server.url, png_header(30000, 30000))
        assert status == 413 and "too large" in body["error"]
        # not an image -> 415
        assert post(server.url, b"<html>hello</html>")[0] == 415

        # a slow client: announces 100 kB, sends 10 bytes, stalls -> 408 after --read-timeout (2 s)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 100000\r\n\r\n0123456789")
            answer = slow.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 408"), answer[:80]

        # a stream client that sends one frame and vanishes without reading or closing properly
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as rude:
            rude.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            assert b"101" in rude.recv(4096).split(b"\r\n")[0]
            rude.sendall(b"\x82\x85abcd" + bytes(b ^ m for b, m in zip(b"hello", b"abcdabcd")))
        # a stream client disconnecting mid-stream (frames in flight)
        with connect(ws_url, open_timeout=10) as ws:
            for _ in range(3):
                ws.send(photos[0])
        # malformed frames on a stream: answered with an error, the stream goes on
        with connect(ws_url, open_timeout=10, max_size=None) as ws:
            ws.send(b"\x00\x01garbage")
            bad = json.loads(ws.recv(timeout=30))
            ws.send("not binary")
            text = json.loads(ws.recv(timeout=30))
            ws.send(photos[0])
            fine = json.loads(ws.recv(timeout=60))
        assert (bad["status"], text["status"]) == (415, 400)
        assert fine["frame"] == 2 and len(fine["people"]) >= 1 and fine["people"][0]["track_id"] == 1
        # an oversized WebSocket message closes that stream (1009) only
        with connect(ws_url, open_timeout=10, max_size=None) as ws:
            ws.send(b"\0" * (11 * 1024 * 1024))
            with pytest.raises(Exception):  # noqa: B017 - the close frame surfaces as ConnectionClosed
                ws.recv(timeout=30)
            assert ws.protocol.close_code == 1009
        time.sleep(1)
    finally:
        stop.set()
        bystander.join(60)
    assert good and set(map(str, good)) <= EXPECTED, good
    assert good.count(200) >= 3
    assert server.process.poll() is None and server.health()["status"] == "ok"
    assert post(server.url, photos[1])[0] == 200
