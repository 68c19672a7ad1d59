"""posekit: human pose estimation on an ordinary CPU.

    est = posekit.load("movenet-thunder")      # see posekit.models()
    people = est("photo.jpg")                  # list[Person], keypoints in image pixels
    annotated = posekit.draw(image, people)
"""

from posekit.draw import draw
from posekit.errors import PosekitError
from posekit.estimators.registry import DEFAULT_MODEL, DEFAULT_VIDEO_MODEL, load
from posekit.estimators.registry import models as models
from posekit.io import read_image
from posekit.network import load_network
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16, Skeleton
from posekit.types import Person, Pose

__version__ = "0.1.0"


def track(source, model=DEFAULT_VIDEO_MODEL, **options):
    """Stream a video file, camera index or URL: ``for frame, people in posekit.track("clip.mp4"): ...``.

    frame: (H, W, 3) uint8 RGB; people: tracked (``track_id``) and One-Euro-smoothed persons in image pixels.
    model: an estimator name or object; options go to `posekit.pipeline.track_video` (smooth, max_age, ...).
    Memory stays flat: frames are read lazily by a background thread.
    """
    import contextlib

    from posekit.pipeline import track_video

    est = load(model) if isinstance(model, str) else model
    with contextlib.closing(track_video(source, est, **options)) as frames:
        for f in frames:
            yield f.image, f.people

__all__ = [
    "BLAZEPOSE33", "COCO17", "DEFAULT_MODEL", "DEFAULT_VIDEO_MODEL", "MPII16", "Person", "Pose", "PosekitError",
    "Skeleton", "__version__", "draw", "load", "load_network", "models", "read_image", "track",
]
