"""Scripted experts: closed-loop state machines on the simulator's privileged state.

Each expert exposes ``reset(seed)`` and ``act(obs) -> action`` and emits actions through
:meth:`envs.base.FrankaTaskEnv.ee_target_to_action`, so one expert serves every
position-type control mode. They are the demonstrators for behaviour cloning and the
``scripted`` policy of ``robolearn rollout``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.base import FrankaTaskEnv
from envs.tasks import CUBE_HALF_M, LiftTask, PickPlaceTask, PushTask, ReachTask
from robolearn.types import ConfigError, FloatArray

HOVER_M = 0.08  # height above the cube before descending
CARRY_STEP_M = 0.025  # largest EE move per tick while holding the cube
PUSH_STEP_M = 0.012  # EE advance per tick while pushing
GRASP_Z_M = CUBE_HALF_M - 0.005  # EE height at which the fingers close on the cube
CLOSE_TICKS = 5  # ticks to wait for the fingers to close


def _clip_norm(vec: FloatArray, max_norm: float) -> FloatArray:
    norm = float(np.linalg.norm(vec))
    return vec if norm <= max_norm else vec * (max_norm / norm)


class ScriptedExpert:
    """Base class: holds the unwrapped env; subclasses implement :meth:`act`."""

    def __init__(self, env: gym.Env) -> None:
        unwrapped = env.unwrapped
        if not isinstance(unwrapped, FrankaTaskEnv):
            raise ConfigError(
                f"scripted experts drive robolearn Franka tasks, not {type(unwrapped)}"
            )
        self.env = unwrapped
        self.phase = 0

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode. The experts are deterministic; ``seed`` is for API parity."""
        self.phase = 0
        self._ticks = 0

    def act(self, obs: Any = None) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def _ee(self) -> FloatArray:
        return self.env.driver.ee_pose()[0]

    def _cube(self) -> FloatArray:
        return self.env.driver.object_pose("cube")[0]

    def _move(
        self, target: FloatArray, gripper_open: bool, max_step: float | None = None
    ) -> np.ndarray:
        ee = self._ee()
        if max_step is not None:
            target = ee + _clip_norm(target - ee, max_step)
        return self.env.ee_target_to_action(target, gripper_open)


class ReachExpert(ScriptedExpert):
    """Go straight to the goal."""

    def act(self, obs: Any = None) -> np.ndarray:
        return self._move(self.env.goal, gripper_open=True)


class GraspExpert(ScriptedExpert):
    """Hover, descend, close, then carry the cube to the goal (Lift and PickPlace)."""

    APPROACH, DESCEND, CLOSE, CARRY = range(4)

    def act(self, obs: Any = None) -> np.ndarray:
        ee, cube = self._ee(), self._cube()
        if self.phase == self.CARRY and self._dropped(ee, cube):
            self.phase = self.APPROACH
        if self.phase == self.APPROACH:
            hover = cube + np.array([0.0, 0.0, HOVER_M])
            if np.linalg.norm(hover - ee) < 0.015:
                self.phase = self.DESCEND
            return self._move(hover, gripper_open=True)
        if self.phase == self.DESCEND:
            grasp = np.append(cube[:2], GRASP_Z_M)
            if np.linalg.norm(grasp - ee) < 0.006:
                self.phase, self._ticks = self.CLOSE, 0
            return self._move(grasp, gripper_open=True, max_step=CARRY_STEP_M)
        if self.phase == self.CLOSE:
            self._ticks += 1
            if self._ticks >= CLOSE_TICKS:
                self.phase = self.CARRY
            return self._move(np.append(cube[:2], GRASP_Z_M), gripper_open=False)
        return self._move(self._carry_waypoint(ee, cube), gripper_open=False, max_step=CARRY_STEP_M)

    def _carry_waypoint(self, ee: FloatArray, cube: FloatArray) -> FloatArray:
        goal = self.env.goal
        offset = ee - cube  # keep the grasp offset so the cube, not the hand, reaches the goal
        far = np.linalg.norm(goal[:2] - cube[:2]) > 0.02
        target = goal.copy()
        if far:
            target[2] = max(goal[2], CUBE_HALF_M + HOVER_M * 0.75)
        return target + offset

    def _dropped(self, ee: FloatArray, cube: FloatArray) -> bool:
        return bool(np.linalg.norm(ee - cube) > 0.05)


class PushExpert(ScriptedExpert):
    """Close the gripper, get behind the cube on the cube→goal line, push along it."""

    APPROACH, DESCEND, PUSH, DONE = range(4)
    BEHIND_M = CUBE_HALF_M + 0.025
    PUSH_Z_M = CUBE_HALF_M

    def act(self, obs: Any = None) -> np.ndarray:
        ee, cube, goal = self._ee(), self._cube(), self.env.goal
        to_goal = goal[:2] - cube[:2]
        dist = float(np.linalg.norm(to_goal))
        if dist < 0.015 or (self.phase == self.DONE and dist < 0.03):
            self.phase = self.DONE  # retreat upwards and stay clear of the cube
            return self._move(np.append(ee[:2], cube[2] + HOVER_M), False, CARRY_STEP_M)
        if self.phase == self.DONE:
            self.phase = self.APPROACH
        direction = to_goal / dist
        behind = np.append(cube[:2] - direction * self.BEHIND_M, self.PUSH_Z_M)
        if self.phase == self.PUSH and self._off_line(ee, cube, direction):
            self.phase = self.APPROACH
        if self.phase == self.APPROACH:
            hover = behind + np.array([0.0, 0.0, HOVER_M])
            if np.linalg.norm(hover - ee) < 0.015:
                self.phase = self.DESCEND
            return self._move(hover, gripper_open=False)
        if self.phase == self.DESCEND:
            if np.linalg.norm(behind - ee) < 0.008:
                self.phase = self.PUSH
            return self._move(behind, gripper_open=False, max_step=CARRY_STEP_M)
        advance = min(PUSH_STEP_M, dist)
        target = np.append(cube[:2] - direction * (self.BEHIND_M - 0.02 - advance), self.PUSH_Z_M)
        return self._move(target, gripper_open=False, max_step=PUSH_STEP_M * 1.5)

    def _off_line(self, ee: FloatArray, cube: FloatArray, direction: FloatArray) -> bool:
        rel = ee[:2] - cube[:2]
        along = float(rel @ direction)
        lateral = abs(float(rel[0] * direction[1] - rel[1] * direction[0]))
        return lateral > 0.012 or along > -CUBE_HALF_M or ee[2] > self.PUSH_Z_M + 0.03


_EXPERTS: dict[type, type[ScriptedExpert]] = {
    ReachTask: ReachExpert,
    PushTask: PushExpert,
    LiftTask: GraspExpert,
    PickPlaceTask: GraspExpert,
}


def make_expert(env: gym.Env) -> ScriptedExpert:
    """The scripted expert of ``env``'s task."""
    unwrapped = env.unwrapped
    task = getattr(unwrapped, "task", None)
    expert_cls = _EXPERTS.get(type(task))
    if expert_cls is None:
        raise ConfigError(f"no scripted expert for task {type(task).__name__}")
    return expert_cls(env)
