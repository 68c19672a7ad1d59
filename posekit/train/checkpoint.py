"""Checkpoints as one safetensors file: model weights (``model.*``), optimizer moments (``optim.<param>.<key>``)
and, in the file's metadata under "posekit", JSON with the model description (skeleton, input, head), the
training config, the step / epoch reached, the best score so far and the optimizer's hyper-parameters."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posekit.errors import PosekitError
from posekit.io import write_atomic


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``info`` is the metadata JSON, ``tensors`` every stored tensor."""

    path: Path
    info: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def model_state(self) -> dict[str, torch.Tensor]:
        return {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")}

    def restore_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Load the stored optimizer moments and hyper-parameters into ``optimizer``."""
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in self.tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": self.info["optimizer"]})


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, info: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None) -> Path:
    """Write model (+ optimizer) and ``info`` atomically to ``path``."""
    from safetensors.torch import save

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info = dict(info)
    if optimizer is not None:
        sd = optimizer.state_dict()
        for index, state in sd["state"].items():
            for name, value in state.items():
                tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        info["optimizer"] = sd["param_groups"]
    return write_atomic(path, save(tensors, metadata={"posekit": json.dumps(info)}))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; PosekitError when the file is missing or not one."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise PosekitError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError) as exc:
        raise PosekitError(f"{path} is not a safetensors checkpoint ({exc})") from None
    if "posekit" not in meta:
        raise PosekitError(f"{path} is a safetensors file without posekit metadata; pass a checkpoint written by "
                           "posekit train")
    return Checkpoint(path, json.loads(meta["posekit"]), tensors)
