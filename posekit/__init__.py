"""posekit: human pose estimation on an ordinary CPU."""

from posekit.errors import PosekitError
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16, Skeleton
from posekit.types import Person, Pose

__version__ = "0.1.0"

__all__ = ["BLAZEPOSE33", "COCO17", "MPII16", "Person", "Pose", "PosekitError", "Skeleton", "__version__"]
