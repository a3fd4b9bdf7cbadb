"""The policy contract, its folder format and the registry.

Every policy is a :class:`Policy` (a ``torch.nn.Module``) built from a typed config::

    policy = make_policy("diffusion", DiffusionConfig(input_features=..., ...), stats)
    loss, metrics = policy.compute_loss(batch)   # batch: raw (unnormalized) training windows
    policy.save("runs/lift/checkpoints/last")    # config.json + model.safetensors
    policy = load_policy("runs/lift/checkpoints/last")
    policy.reset(seed=0)
    action = policy.act(obs)                     # (A,) numpy, one control tick
    chunk = policy.predict_chunk(obs)            # (H, A) numpy, row 0 = this tick

Observations
------------
``obs`` maps feature names to the *current* frame, unbatched: vectors ``(D,)`` float,
camera images ``(H, W, 3)`` uint8 or ``(3, H, W)`` float in [0, 1]. Names are the dataset's
(``observation.state``, ``observation.images.front``...);
:func:`robolearn.policies.env_io.policy_inputs`
turns an env observation into them. A policy keeps the observation history it needs
(``n_obs_steps``) itself; :meth:`Policy.reset` clears it. Normalization happens inside the
policy with statistics stored in ``model.safetensors``, so a saved folder is self-contained.

Folder format
-------------
``config.json`` holds ``{"type": <registry name>, "format": 1, "config": {...}}``;
``model.safetensors`` holds the ``state_dict`` (no pickle anywhere). :meth:`Policy.save` writes
to a temporary sibling and renames it into place, so a crash while saving never damages the
previous checkpoint of that name.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from robolearn.core.config_dict import config_from_dict
from robolearn.core.stats import Stats
from robolearn.core.types import ConfigError
from robolearn.perception.encoders import CONFIG_FILE, WEIGHTS_FILE, save_module_folder
from robolearn.perception.normalize import Normalizer, NormMode

FORMAT_VERSION = 1
ACTION = "action"

Obs = Mapping[str, Any]
Batch = dict[str, Any]


@dataclasses.dataclass
class PolicyConfig:
    """Fields every policy config has. Subclasses add their model's hyperparameters."""

    input_features: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    """Observation features the policy reads, name → shape of one frame (images C, H, W)."""
    action_dim: int = 0
    """Width of the action vector."""
    n_obs_steps: int = 1
    """Observation history length (current frame included)."""
    horizon: int = 1
    """Action steps the model predicts per observation."""
    n_action_steps: int = 1
    """Predicted actions executed before the policy looks again (``act``'s queue)."""
    normalization: dict[str, str] = dataclasses.field(default_factory=dict)
    """Per-feature normalization mode (min_max / mean_std / identity); default: min_max for
    vectors and actions, identity for images."""
    norm_min_scale: float = 0.01
    """Smallest half-range (min_max) or standard deviation (mean_std) an observation vector
    entry is divided by, in the feature's own units (m, rad, …). An entry that barely varies
    in the dataset (the hand's quaternion under a pointing-down expert: half-range 2e-4)
    otherwise turns sensor noise or another simulator's small offsets into inputs far outside
    training (0.002 of noise → 10 normalized units). Actions always use their dataset range.
    Checkpoints saved before this field existed keep their saved statistics (1e-8)."""
    vision: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Image-encoder options (:class:`robolearn.perception.ObsEncoderConfig` fields) for
    policies with camera inputs; its state and image keys come from ``input_features``."""
    env: dict[str, Any] = dataclasses.field(default_factory=dict)
    """How the training data was collected (env id, control mode, rate...): what ``eval``
    and ``deploy`` rebuild by default."""

    @property
    def image_keys(self) -> list[str]:
        """Camera features (3-D shapes), in config order."""
        return [k for k, s in self.input_features.items() if len(s) == 3]

    @property
    def state_keys(self) -> list[str]:
        """Vector features (1-D shapes), in config order."""
        return [k for k, s in self.input_features.items() if len(s) == 1]

    def check(self) -> None:
        """Raise ConfigError on an inconsistent config."""
        if not self.input_features:
            raise ConfigError("a policy needs at least one input feature")
        if self.action_dim < 1:
            raise ConfigError(f"action_dim must be ≥ 1, got {self.action_dim}")
        if self.n_obs_steps < 1 or self.horizon < 1 or self.n_action_steps < 1:
            raise ConfigError("n_obs_steps, horizon and n_action_steps must be ≥ 1")
        if not self.norm_min_scale > 0:
            raise ConfigError(f"norm_min_scale must be > 0, got {self.norm_min_scale}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from :meth:`to_dict` output; unknown fields are an error naming them."""
        return config_from_dict(cls, data, message="{name} has no fields {unknown}; known: {known}")


C = TypeVar("C", bound=PolicyConfig)


class Policy(nn.Module, abc.ABC):
    """Base class of every policy: observation history, action queue, normalization, I/O.

    Subclasses set ``name`` and ``config_class``, build their networks in ``__init__`` after
    calling ``super().__init__(config, stats)``, and implement :meth:`compute_loss` and
    :meth:`_predict` (normalized observation history → normalized action chunk).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[PolicyConfig]]
    trains_from_datasets: ClassVar[bool] = True
    """Whether ``robolearn train --dataset`` trains it (False for RL agents)."""

    def __init__(self, config: PolicyConfig, stats: Mapping[str, Stats] | None = None) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.normalizer = _make_normalizer(config, stats)
        self._history: deque[dict[str, torch.Tensor]] = deque(maxlen=config.n_obs_steps)
        self._queue: deque[np.ndarray] = deque()
        self._generator: torch.Generator | None = None

    # -- the contract ------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: clear the observation history and the action queue; ``seed``
        makes sampling (diffusion noise, latent draws) reproducible."""
        self._history.clear()
        self._queue.clear()
        self._generator = None
        if seed is not None:
            self._generator = torch.Generator(device=self.device).manual_seed(seed)

    @torch.no_grad()
    def act(self, obs: Obs) -> np.ndarray:
        """The action (A,) for this tick: the next queued action, refilled from a new
        chunk (its first ``n_action_steps`` rows) when empty."""
        self._observe(obs)
        if not self._queue:
            chunk = self._chunk_from_history()
            self._queue.extend(chunk[: self.config.n_action_steps])
        return self._queue.popleft()

    @torch.no_grad()
    def predict_chunk(self, obs: Obs) -> np.ndarray:
        """The executable action chunk (H, A) for ``obs``; row 0 is the action for this tick."""
        self._observe(obs)
        return self._chunk_from_history()

    @abc.abstractmethod
    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch of raw windows (see :mod:`robolearn.data.torch_dataset`)
        and scalar metrics to log."""

    @abc.abstractmethod
    def _predict(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalized history ``{key: (B, n_obs_steps, *shape)}`` → normalized executable
        actions (B, H, A) whose row 0 belongs to the newest observation."""

    # -- hooks for training ------------------------------------------------------------------

    @property
    def action_offset(self) -> int:
        """First action step of a training window relative to its newest observation
        (0: actions start now, as in ACT; Diffusion Policy's windows start with the history)."""
        return 0

    def on_train_step(self) -> None:
        """Called after each optimizer step (EMA updates)."""

    def inference_module(self) -> Policy:
        """The module whose weights are saved and run at inference (EMA may swap in)."""
        return self

    # -- helpers shared by subclasses --------------------------------------------------------

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    def normalize_inputs(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Normalized copies of the configured observation features and, when present,
        the action (images stay in [0, 1])."""
        keys = [*self.config.input_features, ACTION]
        return {k: self.normalizer.normalize(k, batch[k]) for k in keys if k in batch}

    def _observe(self, obs: Obs) -> None:
        frame = {k: self._frame_tensor(k, obs) for k in self.config.input_features}
        frame = {k: self.normalizer.normalize(k, v) for k, v in frame.items()}
        if not self._history:  # pad the history with the first frame, as in training
            self._history.extend([frame] * (self.config.n_obs_steps - 1))
        self._history.append(frame)

    def _frame_tensor(self, key: str, obs: Obs) -> torch.Tensor:
        if key not in obs:
            raise ConfigError(
                f"the policy reads {key!r}, missing from the observation (keys: {sorted(obs)})"
            )
        value = torch.from_numpy(np.array(obs[key]))  # a copy: obs arrays may be read-only
        shape = tuple(self.config.input_features[key])
        if len(shape) == 3 and value.dtype == torch.uint8:  # (H, W, C) uint8 → (C, H, W)
            value = value.permute(2, 0, 1).float().div_(255.0)
        value = value.float().to(self.device)
        if tuple(value.shape) != shape:
            raise ConfigError(
                f"observation {key!r} has shape {tuple(value.shape)}, expected {shape}"
            )
        return value

    def _chunk_from_history(self) -> np.ndarray:
        stacked = {k: torch.stack([f[k] for f in self._history])[None] for k in self._history[0]}
        was_training = self.training
        self.eval()
        try:
            actions = self._predict(stacked)  # (1, H, A) normalized
        finally:
            self.train(was_training)
        actions = self.normalizer.unnormalize(ACTION, actions)[0]
        return actions.float().cpu().numpy().astype(np.float64)

    # -- the folder format -------------------------------------------------------------------

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """:meth:`compute_loss` (so that data-parallel wrappers see a forward call)."""
        return self.compute_loss(batch)

    def save(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``folder`` atomically; ``extra``
        may add files (training state) to the folder before it is moved into place."""
        meta = {"type": self.name, "format": FORMAT_VERSION, "config": self.config.to_dict()}
        return save_module_folder(folder, meta, self, extra)


def _make_normalizer(config: PolicyConfig, stats: Mapping[str, Stats] | None) -> Normalizer:
    modes: dict[str, NormMode] = {k: "min_max" for k in config.state_keys}
    modes.update({k: "identity" for k in config.image_keys})
    modes[ACTION] = "min_max"
    for key, mode in config.normalization.items():
        modes[key] = mode  # type: ignore[assignment]
    if stats is None:
        shapes = {k: _stat_shape(k, config) for k in modes}
        return Normalizer.placeholder(shapes, modes)
    floor = {k: config.norm_min_scale for k in config.state_keys}
    return Normalizer(stats, modes, min_scale=floor)


def _stat_shape(key: str, config: PolicyConfig) -> tuple[int, ...]:
    if key == ACTION:
        return (config.action_dim,)
    shape = tuple(config.input_features[key])
    return (shape[0], 1, 1) if len(shape) == 3 else shape


# -- the registry ---------------------------------------------------------------------------

POLICIES: dict[str, type[Policy]] = {}
"""Registered policy classes by name."""

P = TypeVar("P", bound=type[Policy])


def register_policy(cls: P) -> P:
    """Class decorator adding a policy to :data:`POLICIES` under ``cls.name``."""
    if cls.name in POLICIES and POLICIES[cls.name] is not cls:
        raise ConfigError(f"policy name {cls.name!r} is already registered")
    POLICIES[cls.name] = cls
    return cls


def available_policies() -> list[str]:
    """Registered policy names."""
    _import_builtin()
    return sorted(POLICIES)


def policy_class(name: str) -> type[Policy]:
    """The registered class called ``name``."""
    _import_builtin()
    if name not in POLICIES:
        raise ConfigError(f"unknown policy {name!r}; registered: {sorted(POLICIES)}")
    return POLICIES[name]


def make_policy(
    name: str, config: PolicyConfig, stats: Mapping[str, Stats] | None = None
) -> Policy:
    """A new policy ``name`` with ``config`` and normalization ``stats``."""
    cls = policy_class(name)
    if not isinstance(config, cls.config_class):
        raise ConfigError(f"policy {name!r} takes a {cls.config_class.__name__}")
    return cls(config, stats)


def read_policy_config(folder: str | Path) -> tuple[str, PolicyConfig]:
    """The registry name and config of a saved policy folder."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"{folder} is not a policy folder: {CONFIG_FILE} is missing (a checkpoint folder "
            f"holds {CONFIG_FILE} and {WEIGHTS_FILE}, e.g. runs/NAME/checkpoints/last)"
        )
    try:
        meta = json.loads(path.read_text())
        name, data = meta["type"], meta["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a robolearn policy config: {exc}") from exc
    return name, policy_class(name).config_class.from_dict(data)


def resolve_device(name: str) -> str:
    """A torch device name from ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present);
    ConfigError for an unknown name or a CUDA device this machine does not have."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    index = name.partition(":")[2]
    if (
        not name.startswith("cuda")
        or name not in ("cuda", f"cuda:{index}")
        or not (index == "" or index.isdigit())
    ):
        raise ConfigError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    return name


def load_policy(folder: str | Path, device: str | torch.device = "cpu") -> Policy:
    """Load a policy saved with :meth:`Policy.save` (no pickle), in eval mode on ``device``."""
    folder = Path(folder)
    name, config = read_policy_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"{weights} is missing; the checkpoint is incomplete")
    if config.vision.get("pretrained_path"):  # the saved weights already include them
        config.vision = {**config.vision, "pretrained_path": None}
    policy = policy_class(name)(config)
    try:
        state = load_file(str(weights))
    except (RuntimeError, OSError, SafetensorError) as exc:
        raise ConfigError(
            f"{weights} is not a readable safetensors file ({exc}): the checkpoint is damaged "
            "(empty or cut short); use another checkpoint of the run"
        ) from exc
    _check_state_keys(weights, name, policy.state_dict(), state)
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"{weights} does not fit a {name} policy with its config: {exc}") from exc
    return policy.to(device).eval()


def _check_state_keys(
    weights: Path, name: str, expected: Mapping[str, Any], found: Mapping[str, Any]
) -> None:
    """One short error when the saved tensors' names differ from the model's."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ConfigError(
            f"{weights} does not fit a {name} policy built from its config.json: "
            f"{len(missing)} tensors missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}); was it saved by another robolearn version?"
        )


def check_policy_spec(
    config: PolicyConfig, observation_shapes: Mapping[str, tuple[int, ...]], action_dim: int
) -> None:
    """ConfigError naming both specs when an env/robot does not offer what the policy needs."""
    problems = []
    for key, shape in config.input_features.items():
        have = observation_shapes.get(key)
        if have is None:
            problems.append(f"{key} missing")
        elif tuple(have) != tuple(shape) and not _same_image(shape, have):
            problems.append(f"{key} is {tuple(have)}, policy needs {tuple(shape)}")
    if action_dim != config.action_dim:
        problems.append(f"action has {action_dim} dims, policy outputs {config.action_dim}")
    if problems:
        policy_spec = {k: tuple(v) for k, v in config.input_features.items()}
        offered = {k: tuple(v) for k, v in observation_shapes.items()}
        raise ConfigError(
            f"policy and robot do not match ({'; '.join(problems)}). Policy spec: inputs "
            f"{policy_spec}, action ({config.action_dim},). Robot/env spec: observations "
            f"{offered}, action ({action_dim},)"
        )


def _same_image(policy_shape: list[int] | tuple[int, ...], have: tuple[int, ...]) -> bool:
    """An env's (H, W, C) image matches a policy's (C, H, W) one."""
    return len(have) == 3 and tuple(have) == (policy_shape[1], policy_shape[2], policy_shape[0])


_BUILTIN_LOADED = False


def _import_builtin() -> None:
    """Import the built-in policy modules so that they register themselves."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    import importlib
    import importlib.util

    for module in BUILTIN_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


BUILTIN_MODULES: list[str] = [
    "robolearn.policies.bc",
    "robolearn.policies.diffusion",
    "robolearn.policies.act",
    "robolearn.policies.sb3",
]
"""Modules imported on first registry use; each registers its policies."""
