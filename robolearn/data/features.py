"""Feature specs: what one entry of ``info.json["features"]`` says, and frame validation.

Keys follow LeRobot's conventions: ``observation.state``, ``observation.images.<camera>``,
``action``; the writer adds ``timestamp``, ``frame_index``, ``episode_index``, ``index`` and
``task_index`` itself. Data types:

* a NumPy dtype name (``float32``, ``float64``, ``int64``, ``bool``, ...) — a column of the
  data parquet; shape ``(1,)`` is stored as a scalar column, ``(n,)`` as a fixed-size list;
* ``"string"`` — shape ``(1,)``, a ``str`` per frame;
* ``"video"`` — an RGB camera, (H, W, 3) uint8 with even H and W, stored as mp4 video;
* ``"depth"`` — a depth camera, (H, W, 1) float32 metres, stored losslessly (see
  :mod:`robolearn.data.format`);
* ``"image"`` — read only: LeRobot's images embedded in parquet as PNG bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from robolearn.core.types import ConfigError

VIDEO = "video"
DEPTH = "depth"
IMAGE = "image"
STRING = "string"
VISUAL_DTYPES = (VIDEO, DEPTH, IMAGE)
IMAGE_NAMES = ["height", "width", "channels"]
DEPTH_UNIT_M = 0.001
"""Depth is stored as whole multiples of this many metres (1 mm) in uint16."""
DEPTH_UNIT_INFO_KEY = "depth.unit_m"
"""Key of the depth unit in a depth feature's ``info``."""
NUMERIC_DTYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
)


@dataclass(frozen=True)
class Feature:
    """One entry of ``info.json["features"]``: a data type, a per-frame shape, axis names."""

    dtype: str
    """A NumPy dtype name, ``"string"``, ``"video"``, ``"depth"`` (or ``"image"``, read only)."""
    shape: tuple[int, ...]
    """Shape of one frame's value, e.g. ``(7,)`` or ``(H, W, 3)``."""
    names: list[str] | None = None
    """Names of the entries of a vector, or of the axes of an image."""

    @property
    def is_visual(self) -> bool:
        """Whether the feature is a camera stream (decoded from video/depth/image files)."""
        return self.dtype in VISUAL_DTYPES

    def to_json(self) -> dict[str, Any]:
        """The ``info.json`` entry (shape as a list)."""
        return {"dtype": self.dtype, "shape": list(self.shape), "names": self.names}

    @classmethod
    def from_json(cls, key: str, entry: Mapping[str, Any]) -> Feature:
        """Parse an ``info.json`` entry; ConfigError naming ``key`` when malformed."""
        if not isinstance(entry, Mapping) or "dtype" not in entry or "shape" not in entry:
            raise ConfigError(f"feature {key!r} needs a 'dtype' and a 'shape', got {entry!r}")
        shape = tuple(int(n) for n in entry["shape"])
        return cls(str(entry["dtype"]), shape, _names_list(entry.get("names")))


DEFAULT_FEATURES: dict[str, Feature] = {
    "timestamp": Feature("float32", (1,)),
    "frame_index": Feature("int64", (1,)),
    "episode_index": Feature("int64", (1,)),
    "index": Feature("int64", (1,)),
    "task_index": Feature("int64", (1,)),
}
"""The columns the writer adds to every frame, as LeRobot does."""


def _names_list(names: Any) -> list[str] | None:
    """Names as a list: LeRobot v2.0 sometimes wrote ``{"motors": [...]}``."""
    if names is None:
        return None
    if isinstance(names, Mapping):
        values = list(names.values())
        return [str(n) for n in values[0]] if values else None
    return [str(n) for n in names]


def check_features(features: Mapping[str, Feature]) -> dict[str, Feature]:
    """Validate user features for writing; returns them with image axis names filled in.

    Raises ConfigError naming the offending key.
    """
    if not features:
        raise ConfigError("a dataset needs at least one feature")
    checked: dict[str, Feature] = {}
    for key, feature in features.items():
        _check_key(key)
        if not isinstance(feature, Feature):
            raise ConfigError(f"feature {key!r} must be a robolearn.data.Feature, got {feature!r}")
        checked[key] = _check_feature(key, feature)
    return checked


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"feature keys must be non-empty strings, got {key!r}")
    if "/" in key:
        raise ConfigError(f"feature key {key!r} must not contain '/' (LeRobot forbids it)")
    if key in DEFAULT_FEATURES or key == "task":
        raise ConfigError(f"feature key {key!r} is reserved: the writer fills it in")


def _check_feature(key: str, feature: Feature) -> Feature:
    """Check one feature's dtype/shape/names; ConfigError naming ``key``."""
    shape = tuple(feature.shape)
    if len(shape) == 0 or any(not isinstance(n, int | np.integer) or n <= 0 for n in shape):
        raise ConfigError(f"feature {key!r}: shape must be positive ints, got {feature.shape}")
    shape = tuple(int(n) for n in shape)
    if feature.dtype in (VIDEO, DEPTH):
        return _check_camera(key, feature, shape)
    if feature.dtype == STRING:
        if shape != (1,):
            raise ConfigError(f"feature {key!r}: a string feature has shape (1,), got {shape}")
    elif feature.dtype not in NUMERIC_DTYPES:
        allowed = ", ".join((*NUMERIC_DTYPES, STRING, VIDEO, DEPTH))
        raise ConfigError(f"feature {key!r}: unknown dtype {feature.dtype!r}; use one of {allowed}")
    if feature.names is not None and len(shape) == 1 and len(feature.names) != shape[0]:
        raise ConfigError(
            f"feature {key!r}: {len(feature.names)} names for shape {shape}; give one per entry"
        )
    return Feature(feature.dtype, shape, feature.names)


def _check_camera(key: str, feature: Feature, shape: tuple[int, ...]) -> Feature:
    channels = 3 if feature.dtype == VIDEO else 1
    if len(shape) != 3 or shape[2] != channels:
        raise ConfigError(
            f"feature {key!r}: a {feature.dtype} feature has shape (H, W, {channels}), got {shape}"
        )
    if feature.dtype == VIDEO and (shape[0] % 2 or shape[1] % 2):
        raise ConfigError(
            f"feature {key!r}: video frames need even height and width (yuv420p), got {shape[:2]}"
        )
    if feature.dtype == DEPTH and "image" in key:
        raise ConfigError(
            f"depth feature {key!r}: the key must not contain 'image' (LeRobot checks such "
            "stats for an RGB shape); use e.g. 'observation.depth.<camera>'"
        )
    return Feature(feature.dtype, shape, feature.names or list(IMAGE_NAMES))


def arrow_type(feature: Feature) -> pa.DataType:
    """The parquet column type LeRobot (Hugging Face ``datasets``) expects for ``feature``."""
    if feature.dtype == STRING:
        return pa.string()
    value_type = pa.from_numpy_dtype(np.dtype(feature.dtype))
    if feature.shape == (1,):
        return value_type
    if len(feature.shape) == 1:
        return pa.list_(value_type, feature.shape[0])
    nested = value_type
    for _ in feature.shape:  # datasets' ArrayND storage: nested variable-size lists
        nested = pa.list_(nested)
    return nested


def check_value(key: str, feature: Feature, value: Any) -> Any:
    """One frame's ``value`` for ``feature`` in its stored form; ConfigError naming ``key``.

    Numbers are cast to the feature's dtype when no information is lost (ints to floats,
    narrower to wider); a shape-(1,) feature also takes a scalar. Video frames must be
    (H, W, 3) uint8; depth maps float metres, (H, W, 1) or (H, W), returned as float32
    (H, W, 1).
    """
    if feature.dtype == STRING:
        if not isinstance(value, str):
            raise ConfigError(f"{key!r}: expected a str, got {type(value).__name__}")
        return value
    arr = np.asarray(value)
    if feature.dtype == VIDEO:
        return _check_video_frame(key, feature, arr)
    if feature.dtype == DEPTH:
        return _check_depth_frame(key, feature, arr)
    return _check_numeric(key, feature, arr)


def _check_numeric(key: str, feature: Feature, arr: np.ndarray) -> np.ndarray:
    target = np.dtype(feature.dtype)
    if not _castable(arr.dtype, target):
        raise ConfigError(f"{key!r}: dtype {arr.dtype} cannot be stored as {feature.dtype}")
    if arr.shape != feature.shape and not (feature.shape == (1,) and arr.shape == ()):
        raise ConfigError(f"{key!r}: expected shape {feature.shape}, got {arr.shape}")
    return arr.astype(target, copy=True).reshape(feature.shape)


def _castable(src: np.dtype, dst: np.dtype) -> bool:
    """Whether values of ``src`` fit ``dst`` in kind: bool→bool, ints→ints/floats, any→float."""
    if dst.kind == "b":
        return src.kind == "b"
    if dst.kind in "iu":
        return src.kind in "iu" or src.kind == "b"
    if dst.kind == "f":
        return src.kind in "iufb"
    return False


def _check_video_frame(key: str, feature: Feature, arr: np.ndarray) -> np.ndarray:
    if arr.dtype != np.uint8 or arr.shape != feature.shape:
        raise ConfigError(
            f"{key!r}: expected an RGB frame {feature.shape} uint8, got {arr.shape} {arr.dtype}"
        )
    return np.array(arr, copy=True, order="C")


def _check_depth_frame(key: str, feature: Feature, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind != "f" or arr.shape not in (feature.shape, feature.shape[:2]):
        raise ConfigError(
            f"{key!r}: expected a float depth map in metres of shape {feature.shape}, "
            f"got {arr.shape} {arr.dtype}"
        )
    return np.array(arr, dtype=np.float32, copy=True).reshape(feature.shape)


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metres → uint16 millimetres (rounded); NaN, inf and ≤ 0 become 0 ("no reading")."""
    finite = np.nan_to_num(depth_m.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.rint(finite * (1.0 / DEPTH_UNIT_M))
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


def mm_to_depth(depth_mm: np.ndarray, unit_m: float = DEPTH_UNIT_M) -> np.ndarray:
    """uint16 depth codes → float32 metres (0 stays 0)."""
    return depth_mm.astype(np.float32) / np.float32(1.0 / unit_m)  # correctly rounded
