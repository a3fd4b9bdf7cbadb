"""Checkpoints: a policy (or MAE) folder plus the optimizer and scheduler state, no pickle.

``checkpoints/<step>/`` and ``checkpoints/last/`` each hold ``config.json`` +
``model.safetensors`` (loadable by :func:`robolearn.policies.base.load_policy`) and, for
``--resume``,
``optimizer.safetensors`` + ``training_state.json``. Each folder is written beside its final
name and renamed into place, so an interrupted save leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robolearn.core.types import ConfigError
from robolearn.policies.base import Policy

LAST = "last"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "training_state.json"


class SavesFolder(Protocol):
    """A model that saves itself as a folder (a :class:`Policy`, an MAE), letting ``extra``
    add files to it before it is moved into place."""

    def save(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """Write the folder; return it."""
        ...


def save_checkpoint(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    folder: Path,
) -> Path:
    """Save ``checkpoints/<step>`` and refresh ``checkpoints/last``; return the step folder."""
    return save_model_checkpoint(policy.inference_module(), optimizer, scheduler, step, folder)


def save_model_checkpoint(
    model: SavesFolder,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    folder: Path,
    more_state: Mapping[str, Any] | None = None,
) -> Path:
    """:func:`save_checkpoint` for any :class:`SavesFolder` model; ``more_state`` adds JSON
    entries (e.g. a generator's state) to ``training_state.json``."""

    def extra(tmp: Path) -> None:
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, str(tmp / OPTIMIZER_FILE))
        state = {"step": step, "param_groups": groups, "scheduler": scheduler.state_dict()}
        state.update(more_state or {})
        (tmp / STATE_FILE).write_text(json.dumps(state, default=_jsonable))

    step_dir = model.save(folder / f"{step:06d}", extra)
    model.save(folder / LAST, extra)
    return step_dir


def load_training_state(
    folder: Path, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """The saved step and scheduler state; restores ``optimizer`` when given."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"{path} is missing: {folder} holds weights but no training state")
    try:
        state = json.loads(path.read_text())
        int(state["step"])
    except (ValueError, KeyError, TypeError) as exc:
        message = f"{path} is not a training state ({exc}): the checkpoint is damaged"
        raise ConfigError(message) from exc
    if optimizer is not None:
        tensors = _read_tensors(folder / OPTIMIZER_FILE)
        optimizer.load_state_dict(_unflatten_optimizer(tensors, state["param_groups"]))
    return state


def checkpoint_problem(
    folder: Path, read_config: Callable[[Path], object] | None = None
) -> str | None:
    """Why ``--resume`` cannot continue from ``folder``, or None when it is intact (config,
    weights, optimizer and training state all readable). ``read_config`` reads the model's
    config (raising ConfigError); default: a policy's."""
    from robolearn.policies.base import WEIGHTS_FILE, read_policy_config

    try:
        (read_config or read_policy_config)(folder)
        for name in (WEIGHTS_FILE, OPTIMIZER_FILE):
            _read_tensors(folder / name)
        load_training_state(folder)
    except ConfigError as exc:
        return str(exc)
    return None


def resume_checkpoint(
    checkpoints: Path, read_config: Callable[[Path], object] | None = None
) -> tuple[Path, list[str]]:
    """The newest intact checkpoint (``last``, then ``<step>`` folders, newest first) and what
    is wrong with each newer one; ConfigError when none is intact. ``read_config``: as for
    :func:`checkpoint_problem`."""
    numbered = sorted((p for p in checkpoints.iterdir() if p.name.isdigit()), reverse=True)
    skipped: list[str] = []
    for folder in [checkpoints / LAST, *numbered]:
        problem = (
            checkpoint_problem(folder, read_config) if folder.is_dir() else f"{folder} is missing"
        )
        if problem is None:
            return folder, skipped
        skipped.append(problem)
    raise ConfigError(
        f"--resume: no intact checkpoint in {checkpoints} ({skipped[0]}); start over with "
        "--overwrite or train into another --out"
    )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; ConfigError when it is missing, empty or cut short."""
    try:
        return load_file(str(path))
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise ConfigError(f"{path} is not a readable safetensors file ({exc})") from exc


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[Any]]:
    tensors = {
        f"{index}.{name}": torch.as_tensor(value).detach().contiguous().cpu()
        for index, entries in state["state"].items()
        for name, value in entries.items()
    }
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return str(value)
