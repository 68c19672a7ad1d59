"""Composition: top-down (detector + single-person model), video sources, tracking, smoothing."""
