"""Training in PyTorch (extra `posekit[train]`): backbones, heads, losses, loop."""
