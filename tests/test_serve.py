"""posekit serve: the HTTP API, WebSocket stream, limits and errors, with a fake estimator (no model download);
one slow test checks /v1/pose against `posekit.predict` with a real model."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from posekit.cli import main  # noqa: E402
from posekit.estimators.base import Estimator  # noqa: E402
from posekit.serve import create_app  # noqa: E402
from posekit.serve.app import Gate, threads_per_worker  # noqa: E402
from posekit.serve.guard import RequestError, read_header  # noqa: E402
from posekit.skeleton import COCO17_NAMES  # noqa: E402
from posekit.types import Person  # noqa: E402

MESSI = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")
RING = np.stack([np.cos(np.linspace(0, 2 * np.pi, 17, endpoint=False)),
                 np.sin(np.linspace(0, 2 * np.pi, 17, endpoint=False))], axis=1) * 20


class BrightSpot(Estimator):
    """One person: 17 joints on a ring around the bright spot of the image (or of each box)."""

    name = "bright-spot"
    multi_person = False

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.hold = hold

    def _find(self, image: np.ndarray, box: np.ndarray) -> Person:
        x1, y1, x2, y2 = np.round(box).astype(int)
        crop = image[y1:y2, x1:x2].sum(axis=2)
        ys, xs = np.nonzero(crop >= crop.max() * 0.7)
        xy = RING + [xs.mean() + x1, ys.mean() + y1]
        return Person(np.concatenate([xy, np.full((17, 1), 0.9)], axis=1), score=0.9)

    def predict(self, image_rgb, boxes=None):
        if self.hold is not None:
            self.hold.wait(5)
        with self.stage("network"):
            if boxes is None:
                return [self._find(image_rgb, np.array([0, 0, image_rgb.shape[1], image_rgb.shape[0]]))]
            return [self._find(image_rgb, b) for b in boxes]


def jpeg(x: int = 60, y: int = 40, size: tuple[int, int] = (120, 160)) -> bytes:
    img = np.zeros((*size, 3), np.uint8)
    cv2.circle(img, (x, y), 4, (255, 255, 255), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


def png_header(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes claiming width x height grey pixels (its data is cut short)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))


@pytest.fixture()
def client():
    app = create_app(BrightSpot(), max_bytes=200_000, max_pixels=1_000_000)
    with TestClient(app) as c:
        yield c


def test_pose_answers_the_predict_record_with_timings_for_multipart_and_raw(client):
    r = client.post("/v1/pose", files={"image": ("../../etc/dot.jpg", jpeg(60, 40), "image/jpeg")})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["image"] == "dot.jpg"  # a label only: the path part of a client's file name is dropped
    assert (rec["width"], rec["height"], rec["model"]) == (160, 120, "bright-spot")
    assert rec["speed"]["network"] > 0 and rec["milliseconds"] >= rec["speed"]["network"]
    assert set(rec["server"]) == {"read", "queue", "decode", "total"}
    (person,) = rec["people"]
    assert list(person["keypoints"]) == list(COCO17_NAMES)
    centre = np.mean([v[:2] for v in person["keypoints"].values()], axis=0)
    assert np.allclose(centre, [60, 40], atol=1.5)
    raw = client.post("/v1/pose", content=jpeg(60, 40), headers={"content-type": "image/jpeg"}).json()
    assert raw["people"] == rec["people"] and raw["image"] is None


def test_pose_query_options_filter_people_and_are_checked(client):
    assert client.post("/v1/pose?min_score=0.95", content=jpeg()).json()["people"] == []
    bad = client.post("/v1/pose?min_score=3", content=jpeg())
    assert bad.status_code == 422 and "min_score" in bad.json()["error"]
    assert client.post("/v1/pose?max_people=zero", content=jpeg()).status_code == 422


def test_bad_bodies_get_their_status_and_a_json_error(client):
    cases = {
        "too large (announced)": (client.post("/v1/pose", content=b"\xff" * 300_000), 413),
        "too large (chunked)": (client.post("/v1/pose", content=iter([b"\xff" * 50_000] * 6)), 413),
        "pixel bomb": (client.post("/v1/pose", content=png_header(30000, 30000)), 413),
        "not an image": (client.post("/v1/pose", content=b"hello, I am text"), 415),
        "truncated jpeg": (client.post("/v1/pose", content=jpeg()[:200]), 415),
        "empty": (client.post("/v1/pose", content=b""), 400),
        "form without file": (client.post("/v1/pose", files={"x": (None, "1")}), 400),
    }
    for what, (r, status) in cases.items():
        assert r.status_code == status, (what, r.status_code, r.text)
        body = r.json()
        assert body["status"] == status and body["error"], what
    assert client.get("/healthz").json()["status"] == "ok"  # still serving


def test_read_header_sizes_without_decoding():
    assert read_header(png_header(300, 200)) == ("PNG", 300, 200)
    with pytest.raises(RequestError) as exc:
        read_header(png_header(30000, 30000))
    assert exc.value.status == 413 and "too large" in exc.value.message
    with pytest.raises(RequestError) as exc:
        read_header(png_header(8000, 6000), max_pixels=40_000_000)
    assert exc.value.status == 413 and "8000 x 6000" in exc.value.message
    with pytest.raises(RequestError) as exc:
        read_header(b"GIF89a" + b"\0" * 20)
    assert exc.value.status == 415


def test_gate_refuses_when_full_and_times_out_without_freeing_a_running_slot():
    async def scenario() -> list:
        gate = Gate(workers=1, queue=0, timeout=0.2)
        release = threading.Event()
        first = asyncio.ensure_future(gate.run(lambda: release.wait(5) and "done"))
        await asyncio.sleep(0.05)
        statuses = []
        for _ in range(2):
            try:
                await gate.run(lambda: "never")
            except RequestError as e:
                statuses.append(e.status)
        try:
            await first
        except RequestError as e:
            statuses.append(e.status)
        statuses.append(gate.busy)  # the timed-out job still runs: its slot is still taken
        release.set()
        await asyncio.sleep(0.1)
        statuses.append(gate.busy)
        statuses.append(await gate.run(lambda: 7))
        gate.close()
        return statuses

    assert asyncio.run(scenario()) == [503, 503, 504, 1, 0, 7]


def test_threads_times_workers_never_exceed_the_cores():
    assert [threads_per_worker(w, 8) for w in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def test_busy_server_answers_503_with_retry_after():
    hold = threading.Event()
    app = create_app(BrightSpot(hold), workers=1, queue=0, timeout=10)
    with TestClient(app) as c:
        first = threading.Thread(target=lambda: c.post("/v1/pose", content=jpeg()))
        first.start()
        deadline = time.monotonic() + 5
        while c.get("/healthz").json()["busy"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.post("/v1/pose", content=jpeg())
        hold.set()
        first.join(5)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        assert c.post("/v1/pose", content=jpeg()).status_code == 200


def test_stream_tracks_each_connection_on_its_own_and_survives_bad_frames(client):
    def run(n: int, start: int) -> list[dict]:
        out = []
        with client.websocket_connect("/v1/stream") as ws:
            for i in range(n):
                ws.send_bytes(jpeg(start + 5 * i, 50))
                out.append(ws.receive_json())
            ws.send_bytes(b"not a jpeg")
            out.append(ws.receive_json())
            ws.send_text("hello")
            out.append(ws.receive_json())
            ws.send_bytes(jpeg(start + 5 * n, 50))
            out.append(ws.receive_json())
        return out

    first = run(4, 40)
    assert [r["frame"] for r in first] == list(range(7))
    assert all(len(r["people"]) == 1 and r["people"][0]["track_id"] == 1 for r in first[:4])
    assert first[4]["status"] == 415 and first[5]["status"] == 400  # errors answered, stream kept
    assert first[6]["people"][0]["track_id"] == 1 and first[6]["time"] > first[0]["time"]
    smoothed = np.mean([v[:2] for v in first[3]["people"][0]["keypoints"].values()], axis=0)
    assert 40 <= smoothed[0] <= 56  # One-Euro filtered: between the first and the latest spot
    second = run(1, 100)
    assert second[0]["people"][0]["track_id"] == 1  # a new connection starts a new tracker


def test_stream_refuses_connections_beyond_the_limit():
    app = create_app(BrightSpot(), max_streams=1)
    with TestClient(app) as c, c.websocket_connect("/v1/stream") as ws:
        with c.websocket_connect("/v1/stream") as extra:
            with pytest.raises(Exception) as closed:
                extra.receive_json()
            assert getattr(closed.value, "code", None) == 1013
        ws.send_bytes(jpeg())
        assert ws.receive_json()["people"]


class FakeIndex:
    def __init__(self) -> None:
        self.queries = []

    def __len__(self) -> int:
        return 3

    def search(self, query, k, mirror=False):
        self.queries.append((query, k, mirror))
        kp = np.tile([[10.0, 20.0, 0.9]], (17, 1))

        def match(i):
            return SimpleNamespace(entry=i, to_dict=lambda keypoints=False: {
                "source": f"photo{i}.jpg", "frame": None, "distance": 0.1 * i,
                **({"keypoints": kp.tolist()} if keypoints else {})})
        return [match(i) for i in range(k)]

    def thumbnail(self, entry):
        return (np.full((32, 16, 3), 200, np.uint8), np.array([0, 0, 16, 32])) if entry == 0 else None


def test_search_needs_an_index_and_answers_with_matches_and_thumbnails(client):
    r = client.post("/v1/search", json={"keypoints": [[0, 0, 1]] * 17})
    assert r.status_code == 501 and "--index" in r.json()["error"]
    index = FakeIndex()
    with TestClient(create_app(BrightSpot(), index=index)) as c:
        named = {n: [float(i), 2.0, 0.8] for i, n in enumerate(COCO17_NAMES)}
        r = c.post("/v1/search", json={"keypoints": named, "k": 2, "mirror": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [m["source"] for m in body["matches"]] == ["photo0.jpg", "photo1.jpg"]
        assert body["matches"][0]["thumbnail"] == "/v1/search/thumbnail/0" and "thumbnail" not in body["matches"][1]
        query, k, mirror = index.queries[-1]
        assert query.shape == (17, 3) and query[5, 0] == 5.0 and (k, mirror) == (2, True)
        by_image = c.post("/v1/search?k=1", content=jpeg(60, 40)).json()
        assert by_image["query"]["score"] == 0.9 and len(by_image["matches"]) == 1
        assert isinstance(index.queries[-1][0], Person)
        thumb = c.get("/v1/search/thumbnail/0")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert c.get("/v1/search/thumbnail/1").status_code == 404
        assert c.get("/v1/search/thumbnail/99").status_code == 404
        for bad in ({"keypoints": [[0, 0]] * 17}, {"keypoints": {"nose": [0, 0, 1]}}, {"nope": 1}):
            r = c.post("/v1/search", json=bad)
            assert r.status_code == 400 and r.json()["error"], bad
        assert c.post("/v1/search", content=b"{", headers={"content-type": "application/json"}).status_code == 400
        assert c.post("/v1/search", json={"keypoints": named, "k": 0}).status_code == 422


def test_search_without_posekit_search_answers_501(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_search(name, *args, **kwargs):
        if name == "posekit.search":
            raise ImportError("No module named 'posekit.search'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_search)
    with TestClient(create_app(BrightSpot(), index="poses.idx")) as c:
        r = c.post("/v1/search", json={"keypoints": [[0, 0, 1]] * 17})
        assert r.status_code == 501 and "posekit.search" in r.json()["error"]
        assert c.get("/v1/models").json()["search"]["enabled"] is False


def test_models_health_docs_page_and_static_files(client):
    models = client.get("/v1/models").json()
    assert models["image_model"] == models["stream_model"] == "bright-spot"
    assert models["skeletons"]["coco17"]["keypoints"] == list(COCO17_NAMES)
    assert "movenet-lightning" in models["available"]
    assert client.get("/healthz").json()["capacity"] == 1 + 16
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/pose", "/v1/models", "/healthz", "/v1/search"} <= set(spec["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.split("<body>")[1]
    assert "getUserMedia" in client.get("/static/app.js").text
    for bad in ("/static/..%2Fapp.py", "/static/nope.js", "/nothing"):
        r = client.get(bad)
        assert r.status_code == 404 and r.json()["error"], bad


def test_cors_is_off_unless_configured():
    with TestClient(create_app(BrightSpot())) as c:
        r = c.get("/healthz", headers={"origin": "https://example.org"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(BrightSpot(), cors_origins=["https://example.org"])) as c:
        r = c.get("/healthz", headers={"origin": "https://example.org"})
        assert r.headers["access-control-allow-origin"] == "https://example.org"


def test_access_log_is_one_json_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="posekit.serve.access"):
        client.post("/v1/pose", content=b"junk")
    (line,) = [json.loads(r.message) for r in caplog.records if r.name == "posekit.serve.access"]
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/pose", 415) and line["ms"] >= 0


def test_cli_serve_checks_its_options_in_one_line(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "posekit serve: error: --workers must be at least 1, got 0"
    assert main(["serve", "--model", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


@pytest.mark.slow
def test_pose_gives_the_people_posekit_predict_gives():
    if not MESSI.is_file():
        pytest.skip(f"{MESSI} not found (apt install opencv-doc)")
    import posekit

    model = "movenet-lightning"
    (expected,) = posekit.predict(str(MESSI), model)
    with TestClient(create_app(model)) as c:
        r = c.post("/v1/pose", files={"image": (MESSI.name, MESSI.read_bytes(), "image/jpeg")})
    assert r.status_code == 200
    got = r.json()
    want = expected.to_json()
    assert got["people"] == want["people"] and len(got["people"]) >= 1
    assert (got["width"], got["height"], got["model"]) == (want["width"], want["height"], want["model"])
    assert set(got["speed"]) == set(want["speed"])


def test_search_with_a_real_pose_index(tmp_path):
    search = pytest.importorskip("posekit.search", reason="posekit.search (the pose index) is not in this tree")
    index = search.PoseIndex.create(tmp_path / "poses.idx", model="movenet-lightning")
    rng = np.random.default_rng(0)
    poses = np.concatenate([rng.uniform(50, 400, (6, 17, 2)), np.full((6, 17, 1), 0.9)], axis=2)
    index.add_poses(poses)
    index.flush()
    with TestClient(create_app(BrightSpot(), index=str(tmp_path / "poses.idx"))) as c:
        assert c.get("/v1/models").json()["search"] == {"enabled": True, "entries": 6, "problem": None}
        r = c.post("/v1/search", json={"keypoints": poses[3].tolist(), "k": 2})
        assert r.status_code == 200, r.text
        best = r.json()["matches"][0]
        assert best["distance"] < 1e-3 and np.allclose(best["keypoints"], poses[3], atol=0.01)
