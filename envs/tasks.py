"""The Franka tasks: Reach, Push, Lift, PickPlace.

Frames: world = robot base; the table top is the plane z = 0. Every task is "bring a point
to a goal point", so all four share one reward and HER relabelling works on each:
Reach moves the end effector; Push slides the cube on the table; Lift raises the cube
``LIFT_HEIGHT_M`` straight up; PickPlace carries the cube to a goal on the table or in the air.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from robolearn.core.geometry import yaw_quat
from robolearn.core.types import FloatArray
from robolearn.drivers.panda import SceneObject, SimulatedPanda
from robolearn.envs.base import Task, TaskState

CUBE_HALF_M = 0.02
CUBE = SceneObject("cube", half_extents=(CUBE_HALF_M,) * 3, mass=0.05)
LIFT_HEIGHT_M = 0.15
OBJECT_X = (0.40, 0.60)
OBJECT_Y = (-0.15, 0.15)
MAX_CUBE_YAW = np.pi / 8
PUSH_HOME_Q = np.array([0.0, 0.1476, 0.0, -2.3979, 0.0, 2.5456, 0.785398])
"""Push's start: the hand pointing down 0.15 m above the table over the middle of the cube's
area (end effector at (0.50, 0, 0.15)), as Fetch's and panda-gym's Push tasks start."""


def _sample_xy(rng: np.random.Generator) -> FloatArray:
    return np.array([rng.uniform(*OBJECT_X), rng.uniform(*OBJECT_Y)])


def _sample_far_xy(rng: np.random.Generator, avoid: FloatArray, min_dist: float) -> FloatArray:
    for _ in range(100):
        xy = _sample_xy(rng)
        if np.linalg.norm(xy - avoid) >= min_dist:
            return xy
    raise RuntimeError("could not sample a goal far enough from the object")


class ReachTask(Task):
    """Move the end effector to a goal point in the workspace."""

    name = "FrankaReach"
    objects = ()
    max_episode_steps = 50
    GOAL_LOW: ClassVar[FloatArray] = np.array([0.30, -0.25, 0.05])
    GOAL_HIGH: ClassVar[FloatArray] = np.array([0.60, 0.25, 0.35])

    def reset(self, driver: SimulatedPanda, rng: np.random.Generator) -> TaskState:
        return TaskState(goal=rng.uniform(self.GOAL_LOW, self.GOAL_HIGH))

    def achieved_goal(self, driver: SimulatedPanda) -> FloatArray:
        return driver.ee_pose()[0]


class _CubeTask(Task):
    """Shared cube handling: placement with a random yaw, cube state observations."""

    objects = (CUBE,)

    def _place_cube(self, driver: SimulatedPanda, rng: np.random.Generator) -> FloatArray:
        pos = np.append(_sample_xy(rng), CUBE_HALF_M)
        driver.set_object_pose("cube", pos, yaw_quat(rng.uniform(-MAX_CUBE_YAW, MAX_CUBE_YAW)))
        return pos

    def achieved_goal(self, driver: SimulatedPanda) -> FloatArray:
        return driver.object_pose("cube")[0]

    def state_obs(self, driver: SimulatedPanda, task: TaskState) -> dict[str, FloatArray]:
        pos, quat = driver.object_pose("cube")
        return {
            "object_pos": pos.astype(np.float32),
            "object_quat": quat.astype(np.float32),
            "object_vel": driver.object_velocity("cube").astype(np.float32),
            "goal_pos": task.goal.astype(np.float32),
        }


class PushTask(_CubeTask):
    """Slide the cube across the table to a goal on the table (v0: the hand starts at the
    driver's home, 0.49 m above the table, and may go anywhere)."""

    name = "FrankaPush"
    max_episode_steps = 100

    def reset(self, driver: SimulatedPanda, rng: np.random.Generator) -> TaskState:
        start = self._place_cube(driver, rng)
        goal = np.append(_sample_far_xy(rng, start[:2], 0.1), CUBE_HALF_M)
        return TaskState(goal=goal, object_start=start)


class PushTaskV1(PushTask):
    """Push v1: the hand starts low over the cube's area and stays near the table.

    Same cube, goals and reward as v0. Starting 0.15 m above the middle of the cube's area
    (as Fetch's and panda-gym's Push do) lets random exploration touch the cube; the box keeps
    a learning agent from sending the hand off the table's edge. SAC+HER learns v1, not v0
    (see the README's reinforcement-learning figures).
    """

    version = 1
    home_q = PUSH_HOME_Q
    workspace_m = (np.array([0.25, -0.35, 0.0]), np.array([0.75, 0.35, 0.3]))
    """A tabletop task: the hand stays within 0.3 m of the table, around the cube's area."""


class LiftTask(_CubeTask):
    """Grasp the cube and lift it ``LIFT_HEIGHT_M`` above where it lay."""

    name = "FrankaLift"
    max_episode_steps = 80

    def reset(self, driver: SimulatedPanda, rng: np.random.Generator) -> TaskState:
        start = self._place_cube(driver, rng)
        return TaskState(goal=start + np.array([0.0, 0.0, LIFT_HEIGHT_M]), object_start=start)


class PickPlaceTask(_CubeTask):
    """Carry the cube to a goal on the table or up to 0.2 m above it."""

    name = "FrankaPickPlace"
    max_episode_steps = 120

    def reset(self, driver: SimulatedPanda, rng: np.random.Generator) -> TaskState:
        start = self._place_cube(driver, rng)
        xy = _sample_far_xy(rng, start[:2], 0.12)
        goal = np.append(xy, CUBE_HALF_M + rng.uniform(0.0, 0.18))
        return TaskState(goal=goal, object_start=start)


TASKS: tuple[type[Task], ...] = (ReachTask, PushTask, PushTaskV1, LiftTask, PickPlaceTask)
"""Every registered task, one class per ``<name>-v<version>``."""
