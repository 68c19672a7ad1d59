"""posekit: human pose estimation on an ordinary CPU.

    est = posekit.load("movenet-thunder")      # see posekit.models()
    people = est("photo.jpg")                  # list[Person], keypoints in image pixels
    annotated = posekit.draw(image, people)
"""

from posekit.draw import draw
from posekit.errors import PosekitError
from posekit.estimators.registry import DEFAULT_MODEL, load
from posekit.estimators.registry import models as models
from posekit.io import read_image
from posekit.network import load_network
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16, Skeleton
from posekit.types import Person, Pose

__version__ = "0.1.0"

__all__ = [
    "BLAZEPOSE33", "COCO17", "DEFAULT_MODEL", "MPII16", "Person", "Pose", "PosekitError", "Skeleton",
    "__version__", "draw", "load", "load_network", "models", "read_image",
]
