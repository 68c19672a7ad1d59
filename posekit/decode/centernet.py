"""Person boxes from the zoo's CenterNet object detector (MobileNetV3 backbone, 80 COCO classes).

The graph decodes itself: ``tower_0/detections`` [1, 100, 6] is built in-graph from the 128x128 class
heatmap (``tower_0/keypoints``, sigmoid, 3x3 max-pool peak suppression, top 100 over cells x classes)
and the box-side regression (``tower_0/wh`` x 16 = distances left, top, right, bottom in input pixels):
each row is x1 = 4 * col - left, y1 = 4 * row - top, x2 = 4 * col + right, y2 = 4 * row + bottom
(input pixels of the 512x512 image), peak score, class id (0 = person), best first.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

CENTERNET_INPUT_SIZE = 512
DETECTIONS_OUTPUT = "tower_0/detections:0"



def decode_centernet(outputs: Mapping[str, np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet outputs (or the ``tower_0/detections`` array itself, [1,] 100, 6) ->
    (boxes (N, 4) x1, y1, x2, y2 in input pixels, scores (N,), class ids (N,) int64), best first."""
    det = outputs[DETECTIONS_OUTPUT] if isinstance(outputs, Mapping) else outputs
    det = np.asarray(det, dtype=np.float32)
    if det.shape[-1] != 6:
        raise ValueError(f"expected CenterNet detections of shape [1, N, 6], got {det.shape}")
    det = det.reshape(-1, 6)
    order = np.argsort(-det[:, 4], kind="stable")
    det = det[order]
    return det[:, :4].copy(), det[:, 4].copy(), np.rint(det[:, 5]).astype(np.int64)
