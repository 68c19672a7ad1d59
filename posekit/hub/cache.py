"""Where model files live on disk, and whether the cached copies are intact.

Layout under ``cache_dir()`` ($POSEKIT_HOME, else ~/.cache/posekit)::

    models/<npm version>/<file basename>     zoo files as shipped (model.json + weights .bin)
    models/<npm version>/.<basename>.ok      verification marker (see below)
    onnx/                                    converted ONNX graphs (written by posekit.convert)

Verification: a file is intact when its sha256 equals the registry's.  Hashing every file on every load would
cost ~0.1-0.3 s for the larger graphs, so after a successful hash a marker records (sha256, size, mtime_ns); later
loads re-hash only when the size or mtime changed.  Corruption that keeps both (bit rot) is caught by
``full=True`` (used by ``posekit models pull``), which always re-hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from posekit.hub.registry import NPM_VERSION, ModelSpec
from posekit.io import write_atomic

CHUNK = 1 << 20


def cache_dir() -> Path:
    """Root of posekit's cache: $POSEKIT_HOME, else ~/.cache/posekit."""
    home = os.environ.get("POSEKIT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "posekit"


def models_dir() -> Path:
    """Folder holding the zoo files of the pinned npm version."""
    return cache_dir() / "models" / NPM_VERSION


def onnx_dir() -> Path:
    """Folder for converted ONNX graphs, named ``<model>-<importer digest>-<variant digest>.onnx``."""
    return cache_dir() / "onnx"


def prune_onnx(folder: Path, model: str, importer: str) -> list[Path]:
    """Delete ``model``'s ONNX imports in ``folder`` made by another importer version than ``importer`` (an
    8-hex digest; imports named ``<model>-<16 hex>.onnx`` predate the importer part), with their lock files: they
    would never be read again.  Returns the deleted imports."""
    stale = []
    for path in folder.glob(f"{model}-*.onnx"):
        parts = path.stem[len(model) + 1:].split("-")
        if [len(p) for p in parts] in ([16], [8, 16]) and all(_is_hex(p) for p in parts) and parts[0] != importer:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".lock").unlink(missing_ok=True)
            _marker(path).unlink(missing_ok=True)
            stale.append(path)
    return stale


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def local_paths(spec: ModelSpec) -> dict[str, Path]:
    """Package-relative path -> where that file is (or will be) cached."""
    return {rel: models_dir() / Path(rel).name for rel in spec.files}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(f".{path.name}.ok")


def mark_verified(path: Path, sha256: str) -> None:
    """Record that ``path`` hashed to ``sha256`` at its current size and mtime (best effort: a read-only cache
    simply gets re-hashed on each load)."""
    st = path.stat()
    record = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    with contextlib.suppress(OSError):
        write_atomic(_marker(path), json.dumps(record).encode())


def recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded for ``path`` by `mark_verified`, None when there is no readable record."""
    try:
        record = json.loads(_marker(path).read_text())
    except (OSError, ValueError):
        return None
    sha = record.get("sha256") if isinstance(record, dict) else None
    return sha if isinstance(sha, str) else None


def file_ok(path: Path, sha256: str, size: int | None = None, full: bool = False) -> bool:
    """True when ``path`` exists with the expected size and sha256 (trusting a fresh marker unless ``full``)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if size is not None and st.st_size != size:
        return False
    if not full:
        try:
            record = json.loads(_marker(path).read_text())
        except (OSError, ValueError):
            record = None
        if record == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}:
            return True
    if file_digest(path) != sha256:
        with contextlib.suppress(OSError):
            _marker(path).unlink(missing_ok=True)  # so later cheap checks also see the damage
        return False
    mark_verified(path, sha256)
    return True


def file_problems(spec: ModelSpec, full: bool = False) -> dict[str, str]:
    """Package-relative path -> "missing" | "corrupted" for each file of ``spec`` not intact in the cache."""
    problems = {}
    for rel, path in local_paths(spec).items():
        if not file_ok(path, spec.files[rel], spec.sizes.get(rel), full):
            problems[rel] = "corrupted" if path.exists() else "missing"
    return problems


def cached_files(spec: ModelSpec, full: bool = False) -> dict[str, Path] | None:
    """The model's cached paths when every file is intact, else None."""
    return None if file_problems(spec, full) else local_paths(spec)
