"""Small rotation helpers. Quaternions are (w, x, y, z); rotation vectors are axis·angle (rad)."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from robolearn.types import FloatArray


def quat_multiply(q_a: FloatArray, q_b: FloatArray) -> FloatArray:
    """The rotation q_a ∘ q_b."""
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(q_a, float), np.asarray(q_b, float))
    return out


def quat_conjugate(quat: FloatArray) -> FloatArray:
    return np.array([quat[0], -quat[1], -quat[2], -quat[3]], dtype=np.float64)


def quat_from_rotvec(rotvec: FloatArray) -> FloatArray:
    """Unit quaternion of the rotation ``rotvec`` (axis · angle in rad)."""
    out = np.empty(4)
    rotvec = np.asarray(rotvec, float)
    angle = math.sqrt(float(rotvec @ rotvec))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    mujoco.mju_axisAngle2Quat(out, rotvec / angle, angle)
    return out


def rotvec_from_quat(quat: FloatArray) -> FloatArray:
    """Rotation vector (axis · angle, angle in [0, π]) of a unit quaternion."""
    out = np.empty(3)
    mujoco.mju_quat2Vel(out, np.asarray(quat, float), 1.0)
    return out


def quat_error(q_target: FloatArray, q_current: FloatArray) -> FloatArray:
    """Rotation vector taking ``q_current`` to ``q_target``, expressed in the base frame."""
    q_err = quat_multiply(q_target, quat_conjugate(q_current))
    if q_err[0] < 0:
        q_err = -q_err
    return rotvec_from_quat(q_err)


def quat_angle_between(q_a: FloatArray, q_b: FloatArray) -> float:
    """Angle in rad of the rotation between two orientations."""
    return float(np.linalg.norm(quat_error(q_a, q_b)))


def quat_from_mat(mat: FloatArray) -> FloatArray:
    out = np.empty(4)
    mujoco.mju_mat2Quat(out, np.asarray(mat, float).reshape(9))
    return out


def yaw_quat(yaw: float) -> FloatArray:
    """Rotation about +z by ``yaw`` rad."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
