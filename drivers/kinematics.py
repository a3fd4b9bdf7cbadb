"""Differential inverse kinematics on a MuJoCo model (damped least squares).

Used by the simulated arm and, with the same robot model, by hardware drivers that accept
end-effector commands. Works on its own ``MjData`` so solving never disturbs a simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robolearn.core.geometry import quat_error
from robolearn.core.types import FloatArray


@dataclass(frozen=True)
class IKResult:
    """Outcome of :meth:`DifferentialIK.solve`."""

    q: FloatArray
    """Joint solution (dof,), inside the joint limits."""
    pos_error_m: float
    rot_error_rad: float
    iterations: int


class DifferentialIK:
    """Damped-least-squares IK for the site ``site_name`` over the joints ``joint_names``."""

    def __init__(
        self,
        model: mujoco.MjModel,
        site_name: str,
        joint_names: tuple[str, ...],
        damping: float = 1e-3,
        rot_weight: float = 0.5,
    ) -> None:
        self._model = model
        self._data = mujoco.MjData(model)
        self._site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site_name)
        joint_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in joint_names]
        self._qpos_idx = np.array([model.jnt_qposadr[j] for j in joint_ids])
        dof_idx = [int(model.jnt_dofadr[j]) for j in joint_ids]
        if dof_idx != list(range(dof_idx[0], dof_idx[0] + len(dof_idx))):
            raise ValueError(f"IK joints must have contiguous DoFs, got {dof_idx}")
        self._dofs = slice(dof_idx[0], dof_idx[-1] + 1)
        self._lower = model.jnt_range[joint_ids, 0].copy()
        self._upper = model.jnt_range[joint_ids, 1].copy()
        self._rot_weight = rot_weight
        self._jac_pos = np.zeros((3, model.nv))
        self._jac_rot = np.zeros((3, model.nv))
        self._jac = np.zeros((6, len(joint_ids)))  # (6, dof) stacked [pos; w * rot]
        self._err = np.zeros(6)
        self._jjt = np.zeros((6, 6))
        self._y = np.zeros(6)
        self._damping = damping

    def forward(self, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Site pose ``(pos (3,), quat (4,))`` in the world frame at joint positions ``q``."""
        self._data.qpos[self._qpos_idx] = q
        mujoco.mj_kinematics(self._model, self._data)
        mujoco.mj_comPos(self._model, self._data)  # cdof, needed by mj_jacSite
        pos = self._data.site_xpos[self._site_id].copy()
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self._data.site_xmat[self._site_id])
        return pos, quat

    def solve(
        self,
        q_init: FloatArray,
        target_pos: FloatArray,
        target_quat: FloatArray,
        max_iters: int = 50,
        tol_pos_m: float = 1e-4,
        tol_rot_rad: float = 1e-3,
        max_step_rad: float = 0.2,
    ) -> IKResult:
        """Iterate DLS steps from ``q_init`` towards the target pose, clamped to joint limits."""
        q = np.asarray(q_init, dtype=np.float64).copy()
        err_pos, err_rot = 0.0, 0.0
        for it in range(1, max_iters + 1):
            pos, quat = self.forward(q)
            e_pos = target_pos - pos
            e_rot = quat_error(target_quat, quat)
            err_pos, err_rot = float(np.linalg.norm(e_pos)), float(np.linalg.norm(e_rot))
            if err_pos < tol_pos_m and err_rot < tol_rot_rad:
                return IKResult(q, err_pos, err_rot, it - 1)
            q = self._step(q, e_pos, e_rot, max_step_rad)
        pos, quat = self.forward(q)
        err_pos = float(np.linalg.norm(target_pos - pos))
        err_rot = float(np.linalg.norm(quat_error(target_quat, quat)))
        return IKResult(q, err_pos, err_rot, max_iters)

    def differential_step(
        self,
        q: FloatArray,
        target_pos: FloatArray,
        target_quat: FloatArray,
        max_step_rad: float = 0.2,
    ) -> FloatArray:
        """One DLS step from ``q`` towards the target: the per-tick differential IK of a
        controller that re-reads the measured pose every tick."""
        q = np.asarray(q, dtype=np.float64)
        pos, quat = self.forward(q)
        return self._step(q, target_pos - pos, quat_error(target_quat, quat), max_step_rad)

    def step_in(
        self,
        data: mujoco.MjData,
        q: FloatArray,
        e_pos: FloatArray,
        e_rot: FloatArray,
        max_step_rad: float = 0.2,
    ) -> FloatArray:
        """One DLS step from ``q`` for a site error ``e_pos`` (m) and ``e_rot`` (rotation vector,
        base frame), with the Jacobian of ``data`` — a simulation of the same model whose
        kinematics (``mj_kinematics`` + ``mj_comPos``) are current at ``q``. Saves the forward
        pass of :meth:`differential_step` when the caller already has it."""
        return self._step(q, e_pos, e_rot, max_step_rad, data)

    def _step(
        self,
        q: FloatArray,
        e_pos: FloatArray,
        e_rot: FloatArray,
        max_step: float,
        data: mujoco.MjData | None = None,
    ) -> FloatArray:
        data = self._data if data is None else data
        mujoco.mj_jacSite(self._model, data, self._jac_pos, self._jac_rot, self._site_id)
        jac, err = self._jac, self._err
        jac[:3] = self._jac_pos[:, self._dofs]
        np.multiply(self._jac_rot[:, self._dofs], self._rot_weight, out=jac[3:])
        err[:3] = e_pos
        np.multiply(e_rot, self._rot_weight, out=err[3:])
        dq = self._dls_step()
        # Joints at a limit that the step would push further are locked (their Jacobian
        # columns zeroed) and the step is solved again: clamping them afterwards instead breaks
        # the descent direction and can make the iteration drift away from the target.
        pushed = ((q <= self._lower) & (dq < 0)) | ((q >= self._upper) & (dq > 0))
        while pushed.any():
            jac[:, pushed] = 0.0
            dq = self._dls_step()
            pushed = ((q <= self._lower) & (dq < 0)) | ((q >= self._upper) & (dq > 0))
        scale = max(1.0, float(np.abs(dq).max()) / max_step)
        return (q + dq / scale).clip(self._lower, self._upper)

    def _dls_step(self) -> FloatArray:
        """Damped least squares ``Jᵀ (J Jᵀ + λI)⁻¹ e`` of ``self._jac`` and ``self._err``."""
        jac, jjt = self._jac, self._jjt
        np.matmul(jac, jac.T, out=jjt)
        jjt.flat[::7] += self._damping  # J Jᵀ + λI
        mujoco.mju_cholFactor(jjt, 0.0)  # small dense Cholesky in C: far cheaper than numpy here
        mujoco.mju_cholSolve(self._y, jjt, self._err)
        return jac.T @ self._y  # (dof,)
