"""Composition: top-down (detector + single-person model), video sources, tracking, smoothing."""

from posekit.pipeline.video import (
    FrameTracker,
    JsonlSink,
    TrackedFrame,
    VideoSink,
    VideoSource,
    frame_record,
    track_video,
)

__all__ = ["FrameTracker", "JsonlSink", "TrackedFrame", "VideoSink", "VideoSource", "frame_record", "track_video"]
