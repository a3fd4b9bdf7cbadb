"""Small rotation helpers. Quaternions are (w, x, y, z); rotation vectors are axis·angle (rad).

Plain numpy, so hardware paths need no simulator; ``tests/test_geometry.py`` checks every
function against MuJoCo's ``mju_*`` routines, which these follow (conventions included).
"""

from __future__ import annotations

import math

import numpy as np

from robolearn.core.types import FloatArray


def quat_multiply(q_a: FloatArray, q_b: FloatArray) -> FloatArray:
    """The rotation q_a ∘ q_b."""
    # Python floats: four-element numpy arithmetic costs more than the products themselves.
    w1, x1, y1, z1 = np.asarray(q_a, float).tolist()
    w2, x2, y2, z2 = np.asarray(q_b, float).tolist()
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def quat_conjugate(quat: FloatArray) -> FloatArray:
    """The inverse rotation of a unit quaternion."""
    return np.array([quat[0], -quat[1], -quat[2], -quat[3]], dtype=np.float64)


def quat_from_rotvec(rotvec: FloatArray) -> FloatArray:
    """Unit quaternion of the rotation ``rotvec`` (axis · angle in rad)."""
    rotvec = np.asarray(rotvec, float)
    angle = math.sqrt(float(rotvec @ rotvec))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[math.cos(angle / 2)], rotvec / angle * math.sin(angle / 2)])


def rotvec_from_quat(quat: FloatArray) -> FloatArray:
    """Rotation vector (axis · angle, the angle wrapped into (-π, π]) of a unit quaternion."""
    quat = np.asarray(quat, float)
    sin_half = math.sqrt(float(quat[1:] @ quat[1:]))
    if sin_half < 1e-15:  # no rotation (MuJoCo's mjMINVAL)
        return np.zeros(3)
    angle = 2.0 * math.atan2(sin_half, float(quat[0]))
    if angle > math.pi:  # the short way round
        angle -= 2.0 * math.pi
    return quat[1:] / sin_half * angle


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
    """Unit quaternion of a 3x3 rotation matrix (or its 9 entries, row-major), w >= 0 when
    the trace is positive."""
    m = np.asarray(mat, float).reshape(3, 3)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 0.5 / math.sqrt(trace + 1.0)
        q = [0.25 / s, (m[2, 1] - m[1, 2]) * s, (m[0, 2] - m[2, 0]) * s, (m[1, 0] - m[0, 1]) * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    out = np.array(q)
    return out / np.linalg.norm(out)


def mat_from_quat(quat: FloatArray) -> FloatArray:
    """3x3 rotation matrix of a unit quaternion."""
    w, x, y, z = np.asarray(quat, float)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def yaw_quat(yaw: float) -> FloatArray:
    """Rotation about +z by ``yaw`` rad."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
