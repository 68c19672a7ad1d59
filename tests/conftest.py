"""Shared fixtures: locating ../shared (golden vectors, real COCO images) and skipping cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("POSEKIT_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SKIP_SHARED = "../shared not found: golden/real-data checks need the shared folder beside the repo (or POSEKIT_SHARED)"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(SKIP_SHARED)
    return SHARED


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    path = shared_dir / "golden"
    if not path.is_dir():
        pytest.skip(f"{path} not found: golden parity checks need it")
    return path


@pytest.fixture(scope="session")
def coco_mini(shared_dir: Path) -> Path:
    """Folder with train2017/*.jpg and annotations/person_keypoints_train2017.json."""
    path = shared_dir / "data" / "coco-mini-train"
    if not (path / "annotations" / "person_keypoints_train2017.json").is_file():
        pytest.skip(f"{path} not found: real-image checks need it")
    return path
