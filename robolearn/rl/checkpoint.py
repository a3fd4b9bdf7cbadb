"""RL checkpoints: a policy folder (:class:`robolearn.policies.sb3.SB3Policy`), plus in ``last`` the
full agent state for ``--resume``. No pickle, no zip.

``checkpoints/<step>/`` holds ``config.json`` + ``model.safetensors`` (the inference network,
loadable by :func:`robolearn.policies.base.load_policy`). ``checkpoints/last/`` adds
``agent.safetensors`` (every network and optimizer tensor of the SB3 algorithm) and
``agent_state.json`` (the step count, optimizer hyperparameters). The replay buffer is not
saved (it can hold gigabytes); a resumed off-policy run refills it before learning again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from robolearn.core.types import ConfigError
from robolearn.policies.sb3 import SB3Policy

LAST = "last"
AGENT_FILE = "agent.safetensors"
AGENT_STATE_FILE = "agent_state.json"


def step_folder(checkpoints: Path, step: int) -> Path:
    """``checkpoints/<step>``, zero-padded so that folders sort by step."""
    return checkpoints / f"{step:06d}"


def save_rl_checkpoint(policy: SB3Policy, model: Any, step: int, checkpoints: Path) -> Path:
    """Write ``checkpoints/<step>`` (the policy) and ``checkpoints/last`` (the policy and the
    agent state), each atomically; return the step folder."""

    def agent_state(tmp: Path) -> None:
        tensors, meta = agent_tensors(model)
        save_file(tensors, str(tmp / AGENT_FILE))
        state = {"num_timesteps": int(model.num_timesteps), "n_updates": _n_updates(model)}
        (tmp / AGENT_STATE_FILE).write_text(json.dumps({**state, **meta}, indent=2))

    folder = policy.save(step_folder(checkpoints, step))
    policy.save(checkpoints / LAST, agent_state)
    return folder


def agent_tensors(model: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every state tensor of an SB3 algorithm, flat, and the non-tensor rest (JSON)."""
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, state in model.get_parameters().items():
        if "param_groups" in state:  # an optimizer
            groups[name] = state["param_groups"]
            for index, entries in state["state"].items():
                for key, value in entries.items():
                    tensors[f"{name}/state/{index}/{key}"] = _tensor(value)
        else:
            tensors.update({f"{name}/{k}": _tensor(v) for k, v in state.items()})
    variables = model._get_torch_save_params()[1]
    for name in variables:
        tensors[f"variable/{name}"] = _tensor(_getattr_path(model, name))
    return tensors, {"param_groups": groups}


def restore_agent(model: Any, folder: Path) -> int:
    """Load ``agent.safetensors`` into ``model`` (built with the same options); return the
    step it was saved at."""
    path, state_path = folder / AGENT_FILE, folder / AGENT_STATE_FILE
    if not path.is_file() or not state_path.is_file():
        raise ConfigError(f"{folder} holds no agent state ({AGENT_FILE}); cannot --resume it")
    tensors, meta = load_file(str(path)), json.loads(state_path.read_text())
    params = _unflatten(tensors, meta["param_groups"])
    try:
        model.set_parameters(params, exact_match=True)
        for name in model._get_torch_save_params()[1]:
            _getattr_path(model, name).data.copy_(tensors[f"variable/{name}"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{path} does not fit this run's agent ({exc}); resume with the options it was "
            "trained with"
        ) from exc
    model.num_timesteps = int(meta["num_timesteps"])
    if hasattr(model, "_n_updates"):
        model._n_updates = int(meta["n_updates"])
    return model.num_timesteps


def _unflatten(tensors: Mapping[str, torch.Tensor], groups: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {name: {"state": {}, "param_groups": g} for name, g in groups.items()}
    for key, value in tensors.items():
        name, _, rest = key.rpartition("/state/") if "/state/" in key else ("", "", "")
        if name in groups:
            index, entry = rest.split("/", 1)
            params[name]["state"].setdefault(int(index), {})[entry] = value
            continue
        module, _, param = key.partition("/")
        if module != "variable":
            params.setdefault(module, {})[param] = value
    return params


def _tensor(value: Any) -> torch.Tensor:
    return torch.as_tensor(value).detach().contiguous().cpu().clone()


def _getattr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _n_updates(model: Any) -> int:
    return int(getattr(model, "_n_updates", 0))
