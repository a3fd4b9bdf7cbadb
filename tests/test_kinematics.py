"""Differential IK on the Panda model: convergence checked against forward kinematics, and
forward kinematics checked against the simulation and against PyBullet's URDF parser."""

from __future__ import annotations

import numpy as np
import pybullet
import pybullet_data
import pytest

from robolearn.core.geometry import quat_angle_between
from robolearn.core.types import Command, ControlMode, FloatArray
from robolearn.drivers.kinematics import DifferentialIK
from robolearn.drivers.mujoco_panda import HOME_Q, MujocoPandaDriver

POS_TOL_M = 0.005
ROT_TOL_RAD = np.radians(2.0)
N_TARGETS = 200
NEAR_START_RAD = 0.5
"""Euclidean joint-space distance of a "nearby" start from the target configuration."""
FAR_BOX_RAD = 1.5
"""Far targets: configurations up to this far from HOME_Q on every joint, solved from HOME_Q."""
FAR_MIN_RATE = 0.9


@pytest.fixture(scope="module")
def robot() -> MujocoPandaDriver:
    """An unconnected simulated Panda: its model, limits and IK solver."""
    return MujocoPandaDriver()


@pytest.fixture(scope="module")
def ik(robot: MujocoPandaDriver) -> DifferentialIK:
    return robot.ik()


def limits(robot: MujocoPandaDriver) -> tuple[FloatArray, FloatArray]:
    return robot.spec.limits("lower"), robot.spec.limits("upper")


def reaches(ik: DifferentialIK, q_init: FloatArray, q_target: FloatArray) -> tuple[bool, str]:
    """Solve for the pose of ``q_target`` from ``q_init``; judge the solution by FK."""
    pos, quat = ik.forward(q_target)
    result = ik.solve(q_init, pos, quat)
    got_pos, got_quat = ik.forward(result.q)
    pos_err = float(np.linalg.norm(got_pos - pos))
    rot_err = quat_angle_between(got_quat, quat)
    report = f"{pos_err * 1e3:.2f} mm, {np.degrees(rot_err):.2f} deg"
    return pos_err < POS_TOL_M and rot_err < ROT_TOL_RAD, report


def near_limit_configuration(
    rng: np.random.Generator, lower: FloatArray, upper: FloatArray
) -> FloatArray:
    """A random configuration with about half its joints within 0.3 rad of a limit, where a
    solver that clamps its steps to the limits is most easily led astray."""
    q = rng.uniform(lower, upper)
    edge = np.where(
        rng.random(q.size) < 0.5,
        lower + rng.uniform(0, 0.3, q.size),
        upper - rng.uniform(0, 0.3, q.size),
    )
    return np.where(rng.random(q.size) < 0.5, edge, q)


def test_ik_converges_from_every_nearby_start(robot: MujocoPandaDriver, ik: DifferentialIK) -> None:
    lower, upper = limits(robot)
    rng = np.random.default_rng(3)
    failures = []
    for k in range(N_TARGETS):
        q_target = near_limit_configuration(rng, lower, upper)
        offset = rng.normal(size=robot.spec.dof)
        q_init = np.clip(q_target + NEAR_START_RAD * offset / np.linalg.norm(offset), lower, upper)
        ok, report = reaches(ik, q_init, q_target)
        if not ok:
            failures.append(f"target {k}: {report}")
    assert not failures, failures


def test_ik_from_home_reaches_most_far_targets(
    robot: MujocoPandaDriver, ik: DifferentialIK
) -> None:
    lower, upper = limits(robot)
    rng = np.random.default_rng(7)
    targets = np.clip(HOME_Q + rng.uniform(-FAR_BOX_RAD, FAR_BOX_RAD, (N_TARGETS, 7)), lower, upper)
    rate = float(np.mean([reaches(ik, HOME_Q, q)[0] for q in targets]))
    print(f"IK from HOME_Q: {rate:.0%} of {N_TARGETS} targets within ±{FAR_BOX_RAD} rad reached")
    assert rate >= FAR_MIN_RATE


def test_ik_solutions_respect_joint_limits(robot: MujocoPandaDriver, ik: DifferentialIK) -> None:
    lower, upper = limits(robot)
    far_away = np.array([2.0, 0.0, 0.5])  # out of reach: the solver pushes against the limits
    for q_init in (HOME_Q, lower, upper):
        q = ik.solve(q_init, far_away, np.array([1.0, 0.0, 0.0, 0.0]), max_iters=20).q
        assert np.all(q >= lower) and np.all(q <= upper)


def test_ik_does_not_disturb_the_simulation(robot: MujocoPandaDriver) -> None:
    with robot:
        before = robot.data.qpos.copy(), robot.data.time
        pos, quat = robot.ik().forward(HOME_Q + 0.3)
        robot.ik().solve(HOME_Q, pos, quat)
        np.testing.assert_array_equal(robot.data.qpos, before[0])
        assert robot.data.time == before[1]


def test_forward_kinematics_matches_the_simulated_site(
    robot: MujocoPandaDriver, ik: DifferentialIK
) -> None:
    lower, upper = limits(robot)
    rng = np.random.default_rng(3)
    with robot:
        for q in rng.uniform(lower, upper, (20, robot.spec.dof)):
            robot.reset_robot(q)  # sets qpos, then mj_forward on the driver's own MjData
            state = robot.read()
            pos, quat = ik.forward(q)
            np.testing.assert_allclose(state.ee_pos, pos, atol=1e-9)
            assert quat_angle_between(state.ee_quat, quat) < 1e-7


def test_forward_kinematics_matches_the_arm_after_motion(
    robot: MujocoPandaDriver, ik: DifferentialIK
) -> None:
    with robot:
        robot.reset_robot(HOME_Q)
        target = HOME_Q + np.array([0.3, 0.2, -0.2, 0.3, 0.0, 0.0, 0.0])
        robot.command(Command(ControlMode.JOINT_POSITION, joint_position=target))
        robot.wait(0.3)  # mid-motion: the joints are moving
        state = robot.read()
        assert np.linalg.norm(state.dq) > 0.01
        pos, quat = ik.forward(state.q)
        np.testing.assert_allclose(state.ee_pos, pos, atol=1e-9)
        assert quat_angle_between(state.ee_quat, quat) < 1e-7


def test_forward_kinematics_matches_pybullet(robot: MujocoPandaDriver, ik: DifferentialIK) -> None:
    """PyBullet parses the same URDF independently of MuJoCo; the grasp-target link frames
    must agree with the IK's site."""
    client = pybullet.connect(pybullet.DIRECT)
    try:
        urdf = f"{pybullet_data.getDataPath()}/franka_panda/panda.urdf"
        body = pybullet.loadURDF(urdf, useFixedBase=True, physicsClientId=client)
        joints = {}
        for j in range(pybullet.getNumJoints(body, physicsClientId=client)):
            info = pybullet.getJointInfo(body, j, physicsClientId=client)
            joints[info[1].decode()] = j
            joints[info[12].decode()] = j  # the child link's name
        lower, upper = limits(robot)
        rng = np.random.default_rng(4)
        for q in rng.uniform(lower, upper, (20, robot.spec.dof)):
            for name, value in zip(robot.spec.joint_names, q, strict=True):
                pybullet.resetJointState(body, joints[name], value, physicsClientId=client)
            link = pybullet.getLinkState(
                body,
                joints["panda_grasptarget"],
                computeForwardKinematics=True,
                physicsClientId=client,
            )
            x, y, z, w = link[5]
            pos, quat = ik.forward(q)
            np.testing.assert_allclose(link[4], pos, atol=1e-6)
            assert quat_angle_between(np.array([w, x, y, z]), quat) < 1e-5
    finally:
        pybullet.disconnect(physicsClientId=client)
