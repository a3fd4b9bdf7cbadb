"""Shaping analog input: deadband, and the rotation from a device's axes to the robot's.

Both analog devices (SpaceMouse, gamepad) first normalise their raw counts to ``[-1, 1]``,
then apply :func:`apply_deadband`, then rotate into the robot's base frame with a matrix
checked by :func:`rotation_matrix`, then scale to metres (radians) per control step.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from robolearn.core.types import ConfigError, FloatArray


def apply_deadband(values: ArrayLike, width: float) -> FloatArray:
    """Zero every entry with ``|v| <= width``; rescale the rest so the output is continuous
    and still reaches ±1 at ±1: ``sign(v) · (|v| - width) / (1 - width)``.

    ``values`` are normalised deflections in ``[-1, 1]`` (clipped to it); ``width`` in [0, 1).
    """
    if not 0.0 <= width < 1.0:
        raise ConfigError(f"deadband must be in [0, 1), got {width}")
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    return np.sign(v) * np.maximum(np.abs(v) - width, 0.0) / (1.0 - width)


def rotation_matrix(matrix: ArrayLike, name: str = "axis map") -> FloatArray:
    """``matrix`` as a 3×3 proper rotation (orthonormal, determinant +1), else ConfigError.

    A proper rotation maps a device's translation *and* its rotation (an axis vector) the
    same way; a reflection would flip the sense of every rotation.
    """
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.shape != (3, 3):
        raise ConfigError(f"{name} must be 3×3, got shape {mat.shape}")
    if not np.allclose(mat @ mat.T, np.eye(3), atol=1e-9) or np.linalg.det(mat) < 0:
        raise ConfigError(f"{name} must be a rotation (orthonormal, det +1), got {mat.tolist()}")
    return mat
