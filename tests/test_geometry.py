"""robolearn.core.geometry (numpy) against MuJoCo's own rotation routines."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robolearn.core import geometry as geo


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_geometry_imports_no_simulator() -> None:
    import subprocess
    import sys

    code = "import robolearn.core.geometry, sys; print('mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_quat_multiply_matches_mujoco() -> None:
    for a, b in zip(_random_quats(50, 1), _random_quats(50, 2), strict=True):
        ref = np.empty(4)
        mujoco.mju_mulQuat(ref, a, b)
        np.testing.assert_allclose(geo.quat_multiply(a, b), ref, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-9, 0.3, 3.0, 3.14159, 6.0])
def test_quat_from_rotvec_matches_mujoco(scale: float) -> None:
    axes = np.random.default_rng(3).normal(size=(20, 3))
    for axis in axes / np.linalg.norm(axes, axis=1, keepdims=True):
        ref = np.empty(4)
        mujoco.mju_axisAngle2Quat(ref, axis, scale)
        np.testing.assert_allclose(geo.quat_from_rotvec(axis * scale), ref, atol=1e-9)


def test_rotvec_from_quat_matches_mujoco() -> None:
    quats = np.vstack([_random_quats(100, 4), [[1, 0, 0, 0], [-1, 0, 0, 0], [0, 1, 0, 0]]])
    for q in quats:
        ref = np.empty(3)
        mujoco.mju_quat2Vel(ref, q, 1.0)
        np.testing.assert_allclose(geo.rotvec_from_quat(q), ref, atol=1e-12)


def test_quat_from_mat_matches_mujoco() -> None:
    for q in _random_quats(200, 5):
        mat = np.empty(9)
        mujoco.mju_quat2Mat(mat, q)
        ref = np.empty(4)
        mujoco.mju_mat2Quat(ref, mat)
        np.testing.assert_allclose(geo.quat_from_mat(mat), ref, atol=1e-9)
        np.testing.assert_allclose(geo.quat_from_mat(mat.reshape(3, 3)), ref, atol=1e-9)


def test_mat_from_quat_matches_mujoco() -> None:
    for q in _random_quats(50, 7):
        ref = np.empty(9)
        mujoco.mju_quat2Mat(ref, q)
        np.testing.assert_allclose(geo.mat_from_quat(q), ref.reshape(3, 3), atol=1e-12)


def test_rotation_round_trip() -> None:
    for q in _random_quats(50, 6):
        q = q if q[0] >= 0 else -q
        np.testing.assert_allclose(geo.quat_from_rotvec(geo.rotvec_from_quat(q)), q, atol=1e-12)
