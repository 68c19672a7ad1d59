"""Image input at the API edge: paths, numpy arrays and PIL images -> (H, W, 3) uint8 RGB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posekit.errors import PosekitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pbm")


def read_image(path: str | os.PathLike, apply_exif: bool = True) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB.

    apply_exif: rotate as the file's EXIF orientation says (what a photo viewer shows); COCO annotations refer
    to the stored pixels, so evaluation passes False.
    """
    p = Path(path)
    if not p.is_file():
        raise PosekitError(f"image not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)  # imdecode copes with non-ASCII paths, imread does not everywhere
    rgb = decode_image(data, apply_exif)
    if rgb is None:
        raise PosekitError(f"cannot decode {p}: not an image or the file is corrupt")
    return rgb


def decode_image(data: bytes | np.ndarray, apply_exif: bool = True) -> np.ndarray | None:
    """Encoded image bytes (JPEG, PNG, ...) -> (H, W, 3) uint8 RGB, as `read_image` decodes a file; None when the
    bytes are not an image OpenCV can decode."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    flags = cv2.IMREAD_COLOR if apply_exif else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(buf, flags) if buf.size else None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def as_rgb(image: Any) -> np.ndarray:
    """A path, an (H, W, 3|4) or (H, W) uint8 array (RGB order) or a PIL image -> (H, W, 3) uint8 RGB."""
    if type(image) is np.ndarray and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 \
            and image.size and image.flags.c_contiguous:  # already one: returned as it is (estimators check twice)
        return image
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL.Image without importing PIL
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PosekitError(f"expected an (H, W, 3) RGB image, got an array of shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def write_image(path: str | os.PathLike, image_rgb: np.ndarray) -> Path:
    """Encode an RGB image to ``path`` (format from the suffix) atomically: temp file + rename."""
    p = Path(path)
    ok, buf = cv2.imencode(p.suffix or ".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise PosekitError(f"cannot encode an image as {p.suffix!r}; use .jpg or .png")
    return write_atomic(p, buf.tobytes())


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` through a temporary file in the same folder and
    os.replace, so a reader never sees a half-written file; the temporary file is removed on failure."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 1) -> Path:
    """Atomic JSON write (see `write_atomic`)."""
    import json

    return write_atomic(path, json.dumps(data, indent=indent))
