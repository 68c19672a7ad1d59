"""posekit: human pose estimation on an ordinary CPU.

    est = posekit.load("movenet-thunder")      # see posekit.models()
    result = est("photo.jpg")                  # Result: a list of Person (keypoints in image pixels) + speed
    annotated = result.plot()
    for r in posekit.predict("photos/"): ...   # one Result per image or video frame
"""

from posekit.defaults import DEFAULTS
from posekit.draw import draw
from posekit.errors import PosekitError
from posekit.estimators.registry import DEFAULT_MODEL, DEFAULT_VIDEO_MODEL, load
from posekit.estimators.registry import models as models
from posekit.io import read_image
from posekit.network import load_network
from posekit.pipeline.predict import predict
from posekit.results import Result
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16, Skeleton
from posekit.types import Person, Pose
from posekit.version import __version__


def track(source, model=DEFAULT_VIDEO_MODEL, **options):
    """Stream a video file, camera index or URL: ``for frame, people in posekit.track("clip.mp4"): ...``.

    frame: (H, W, 3) uint8 RGB; people: a `Result` of tracked (``track_id``) and One-Euro-smoothed persons in
    image pixels.  model: an estimator name or object; options go to `posekit.pipeline.track_video` (smooth,
    max_age, ...).  Memory stays flat: frames are read lazily by a background thread.
    """
    from posekit.pipeline.predict import predict_video, resolve_model

    for result in predict_video(source, resolve_model(model, True), **options):
        yield result.image, result

__all__ = [
    "BLAZEPOSE33", "COCO17", "DEFAULTS", "DEFAULT_MODEL", "DEFAULT_VIDEO_MODEL", "MPII16", "Person", "Pose",
    "PosekitError", "Result", "Skeleton", "__version__", "draw", "load", "load_network", "models", "predict",
    "read_image", "track",
]
