"""Scripted experts: closed-loop state machines on the task's state observation.

An expert reads only the state observation (``ee_pos``, ``ee_quat``, ``qpos``,
``object_pos``, ``goal_pos``), so it runs anywhere a policy runs — in the env loop, or in a
worker process behind the real-time control loop. Built from an env in image mode it falls
back on the env's :meth:`~robolearn.envs.base.FrankaTaskEnv.state_observation`. One expert serves
every
position-type control mode through :class:`ActionMapper`.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from robolearn.core.geometry import quat_error
from robolearn.core.types import ConfigError, FloatArray
from robolearn.envs.base import DOWN_QUAT, MAX_GRIPPER_WIDTH, FrankaTaskEnv
from robolearn.envs.tasks import CUBE_HALF_M, LiftTask, PickPlaceTask, PushTask, ReachTask, Task

Obs = dict[str, np.ndarray]
HOVER_M = 0.08  # height above the cube before descending
CARRY_STEP_M = 0.025  # largest EE move per tick while holding the cube
PUSH_STEP_M = 0.012  # EE advance per tick while pushing
GRASP_Z_M = CUBE_HALF_M - 0.005  # EE height at which the fingers close on the cube
CLOSE_TICKS = 5  # ticks to wait for the fingers to close
POSITION_MODES = ("ee_delta", "ee_delta_pose", "joint_position")


def _clip_norm(vec: FloatArray, max_norm: float) -> FloatArray:
    norm = math.sqrt(float(vec @ vec))
    return vec if norm <= max_norm else vec * (max_norm / norm)


class ActionMapper:
    """Turns "move the end effector to ``target`` (pointing down), gripper open/closed" into
    an action of a position-type control mode."""

    def __init__(self, control_mode: str, max_ee_step_m: float, max_ee_rot_rad: float) -> None:
        if control_mode not in POSITION_MODES:
            raise ConfigError(
                f"scripted experts drive {', '.join(POSITION_MODES)}, not {control_mode!r}"
            )
        self.control_mode = control_mode
        self.max_ee_step_m, self.max_ee_rot_rad = max_ee_step_m, max_ee_rot_rad
        self._ik: Any = None

    def __call__(self, obs: Obs, target: FloatArray, gripper_open: bool) -> np.ndarray:
        ee = obs["ee_pos"].astype(np.float64)
        grip = 1.0 if gripper_open else -1.0
        if self.control_mode == "joint_position":
            return self._joint_action(obs, ee, target, gripper_open)
        delta = np.clip((target - ee) / self.max_ee_step_m, -1.0, 1.0)
        if self.control_mode == "ee_delta":
            return np.append(delta, grip).astype(np.float32)
        rot = quat_error(DOWN_QUAT, obs["ee_quat"].astype(np.float64)) / self.max_ee_rot_rad
        return np.concatenate([delta, np.clip(rot, -1, 1), [grip]]).astype(np.float32)

    def _joint_action(
        self, obs: Obs, ee: FloatArray, target: FloatArray, open_: bool
    ) -> np.ndarray:
        step = _clip_norm(target - ee, self.max_ee_step_m)
        q_now = obs["qpos"].astype(np.float64)
        q = self._solver().solve(q_now, ee + step, DOWN_QUAT, max_iters=20).q
        return np.append(q, MAX_GRIPPER_WIDTH if open_ else 0.0).astype(np.float32)

    def _solver(self) -> Any:
        if self._ik is None:  # built lazily: a mapper may be pickled into a worker process
            from robolearn.drivers.kinematics import DifferentialIK
            from robolearn.drivers.mujoco_panda.model import (
                ARM_JOINTS,
                EE_SITE,
                SceneConfig,
                build_model,
            )

            self._ik = DifferentialIK(build_model(SceneConfig()), EE_SITE, ARM_JOINTS)
        return self._ik

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_ik": None}


class ScriptedExpert:
    """Base class: ``reset(seed)`` and ``act(obs) -> action``; subclasses implement ``_act``."""

    def __init__(
        self, mapper: ActionMapper, env: FrankaTaskEnv | None = None, chunk_horizon: int = 1
    ) -> None:
        self.mapper = mapper
        self._env = env
        self.chunk_horizon = chunk_horizon
        self.phase = 0
        self._ticks = 0

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode. The experts are deterministic; ``seed`` is for API parity."""
        self.phase = 0
        self._ticks = 0

    def act(self, obs: Obs) -> np.ndarray:
        """The action for observation ``obs`` (a state observation, or any with an env)."""
        if "goal_pos" not in obs:
            if self._env is None:
                raise ConfigError("scripted experts need the state observation (obs_mode='state')")
            obs = self._env.state_observation()
        return self._act(obs)

    def predict_chunk(self, obs: Obs) -> np.ndarray:
        """The action repeated ``chunk_horizon`` times, (H, A): a zero-order-hold chunk, so an
        expert behind asynchronous inference still covers the ticks its answer arrives late."""
        return np.repeat(self.act(obs)[None], self.chunk_horizon, axis=0)

    def _act(self, obs: Obs) -> np.ndarray:
        raise NotImplementedError

    def _move(
        self, obs: Obs, target: FloatArray, open_: bool, max_step: float | None = None
    ) -> np.ndarray:
        ee = obs["ee_pos"].astype(np.float64)
        if max_step is not None:
            target = ee + _clip_norm(target - ee, max_step)
        return self.mapper(obs, target, open_)


def _vec(obs: Obs, key: str) -> FloatArray:
    return obs[key].astype(np.float64)


class ReachExpert(ScriptedExpert):
    """Go straight to the goal."""

    def _act(self, obs: Obs) -> np.ndarray:
        return self._move(obs, _vec(obs, "goal_pos"), open_=True)


class GraspExpert(ScriptedExpert):
    """Hover, descend, close, then carry the cube to the goal (Lift and PickPlace)."""

    APPROACH, DESCEND, CLOSE, CARRY = range(4)

    def _act(self, obs: Obs) -> np.ndarray:
        ee, cube = _vec(obs, "ee_pos"), _vec(obs, "object_pos")
        if self.phase == self.CARRY and np.linalg.norm(ee - cube) > 0.05:
            self.phase = self.APPROACH  # dropped: grasp again
        if self.phase == self.APPROACH:
            hover = cube + np.array([0.0, 0.0, HOVER_M])
            if np.linalg.norm(hover - ee) < 0.015:
                self.phase = self.DESCEND
            return self._move(obs, hover, open_=True)
        if self.phase == self.DESCEND:
            grasp = np.append(cube[:2], GRASP_Z_M)
            if np.linalg.norm(grasp - ee) < 0.006:
                self.phase, self._ticks = self.CLOSE, 0
            return self._move(obs, grasp, open_=True, max_step=CARRY_STEP_M)
        if self.phase == self.CLOSE:
            self._ticks += 1
            if self._ticks >= CLOSE_TICKS:
                self.phase = self.CARRY
            return self._move(obs, np.append(cube[:2], GRASP_Z_M), open_=False)
        target = self._carry_waypoint(ee, cube, _vec(obs, "goal_pos"))
        return self._move(obs, target, open_=False, max_step=CARRY_STEP_M)

    @staticmethod
    def _carry_waypoint(ee: FloatArray, cube: FloatArray, goal: FloatArray) -> FloatArray:
        offset = ee - cube  # keep the grasp offset so the cube, not the hand, reaches the goal
        target = goal.copy()
        if np.linalg.norm(goal[:2] - cube[:2]) > 0.02:
            target[2] = max(goal[2], CUBE_HALF_M + HOVER_M * 0.75)
        return target + offset


class PushExpert(ScriptedExpert):
    """Close the gripper, get behind the cube on the cube→goal line, push along it."""

    APPROACH, DESCEND, PUSH, DONE = range(4)
    BEHIND_M = CUBE_HALF_M + 0.025
    PUSH_Z_M = CUBE_HALF_M

    def _act(self, obs: Obs) -> np.ndarray:
        ee, cube, goal = _vec(obs, "ee_pos"), _vec(obs, "object_pos"), _vec(obs, "goal_pos")
        to_goal = goal[:2] - cube[:2]
        dist = float(np.linalg.norm(to_goal))
        if dist < 0.015 or (self.phase == self.DONE and dist < 0.03):
            self.phase = self.DONE  # retreat upwards and stay clear of the cube
            return self._move(obs, np.append(ee[:2], cube[2] + HOVER_M), False, CARRY_STEP_M)
        if self.phase == self.DONE:
            self.phase = self.APPROACH
        direction = to_goal / dist
        behind = np.append(cube[:2] - direction * self.BEHIND_M, self.PUSH_Z_M)
        if self.phase == self.PUSH and self._off_line(ee, cube, direction):
            self.phase = self.APPROACH
        if self.phase == self.DESCEND and np.linalg.norm(behind[:2] - ee[:2]) > 0.015:
            self.phase = self.APPROACH  # the cube moved (still rolling): hover behind it anew
        if self.phase == self.APPROACH:
            hover = behind + np.array([0.0, 0.0, HOVER_M])
            if np.linalg.norm(hover - ee) < 0.015:
                self.phase = self.DESCEND
            if (
                ee[2] < self.PUSH_Z_M + CUBE_HALF_M + 0.01
                and np.linalg.norm(hover[:2] - ee[:2]) > 0.02
            ):
                hover = np.append(ee[:2], hover[2])  # low beside the cube: rise before moving
            return self._move(obs, hover, open_=False)
        if self.phase == self.DESCEND:
            if np.linalg.norm(behind - ee) < 0.008:
                self.phase = self.PUSH
            return self._move(obs, behind, open_=False, max_step=CARRY_STEP_M)
        advance = min(PUSH_STEP_M, dist)
        target = np.append(cube[:2] - direction * (self.BEHIND_M - 0.02 - advance), self.PUSH_Z_M)
        return self._move(obs, target, open_=False, max_step=PUSH_STEP_M * 1.5)

    def _off_line(self, ee: FloatArray, cube: FloatArray, direction: FloatArray) -> bool:
        rel = ee[:2] - cube[:2]
        along = float(rel @ direction)
        lateral = abs(float(rel[0] * direction[1] - rel[1] * direction[0]))
        return lateral > 0.012 or along > -CUBE_HALF_M or ee[2] > self.PUSH_Z_M + 0.03


EXPERTS: dict[type[Task], type[ScriptedExpert]] = {
    ReachTask: ReachExpert,
    PushTask: PushExpert,
    LiftTask: GraspExpert,
    PickPlaceTask: GraspExpert,
}


def make_expert(env: gym.Env) -> ScriptedExpert:
    """The scripted expert of ``env``'s task, acting in ``env``'s control mode."""
    unwrapped = env.unwrapped
    if not isinstance(unwrapped, FrankaTaskEnv):
        raise ConfigError(f"scripted experts drive robolearn Franka tasks, not {type(unwrapped)}")
    mapper = ActionMapper(unwrapped.control_mode, unwrapped.max_ee_step_m, unwrapped.max_ee_rot_rad)
    return _expert_class(unwrapped.task.name)(mapper, env=unwrapped)


def expert_for_task(
    task_name: str,
    control_mode: str = "ee_delta",
    max_ee_step_m: float = 0.05,
    max_ee_rot_rad: float = 0.2,
    chunk_horizon: int = 1,
) -> ScriptedExpert:
    """An env-free expert for ``task_name`` (e.g. "FrankaLift"): picklable, for worker processes."""
    mapper = ActionMapper(control_mode, max_ee_step_m, max_ee_rot_rad)
    return _expert_class(task_name)(mapper, chunk_horizon=chunk_horizon)


def _expert_class(task_name: str) -> type[ScriptedExpert]:
    """The expert of a task by name: every version of a task (``-v<k>``) shares it."""
    task_cls = next((t for t in EXPERTS if t.name == task_name), None)
    if task_cls is None:
        known = ", ".join(t.name for t in EXPERTS)
        raise ConfigError(f"no scripted expert for task {task_name!r}; known: {known}")
    return EXPERTS[task_cls]
