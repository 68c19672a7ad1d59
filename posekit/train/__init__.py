"""Training in PyTorch (extra `posekit[train]`): backbones, heads, losses, loop.

Nothing here imports torch at package import; `require_train_extra` turns a missing extra into a clear error.
"""

from __future__ import annotations

import importlib

from posekit.errors import PosekitError

TRAIN_EXTRA_HINT = "training needs the extra: pip install 'posekit[train]'"


def require_train_extra() -> None:
    """Raise PosekitError naming the fix when torch, safetensors or pyyaml is missing."""
    for module in ("torch", "safetensors", "yaml"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise PosekitError(f"{TRAIN_EXTRA_HINT} ({module} is not installed)") from None
