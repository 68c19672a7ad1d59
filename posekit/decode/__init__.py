"""Post-processing as small pure numpy functions: raw network outputs -> keypoints."""
