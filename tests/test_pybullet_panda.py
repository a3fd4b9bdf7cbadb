"""What only the PyBullet Panda has, and how closely it agrees with the MuJoCo Panda on the same
robot and scene: kinematics, camera poses, images and depth; plus its scene accessors,
isolation between clients, determinism across resets, grasping and configuration errors. The
generic driver behaviour is in ``test_driver_contract.py``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from robolearn.core.geometry import quat_angle_between, yaw_quat
from robolearn.core.types import Command, ConfigError, ControlMode, FloatArray, RobotState
from robolearn.drivers.mujoco_panda import MujocoPandaDriver
from robolearn.drivers.panda import (
    HOME_Q,
    MAX_DAMPING,
    MAX_STIFFNESS,
    CameraRequest,
    Marker,
    SceneConfig,
    SceneObject,
)
from robolearn.drivers.pybullet_panda import PybulletPandaDriver
from robolearn.drivers.pybullet_panda.scene import urdf_joint_limits

CUBE = SceneObject("cube")
GOAL = Marker("goal")
SCENE = SceneConfig(objects=(CUBE,), markers=(GOAL,))
UPRIGHT = np.array([1.0, 0.0, 0.0, 0.0])
FK_TOL_M = 1e-3
FK_TOL_DEG = 0.5
CENTROID_TOL_PX = 2.0
"""Largest distance between the red-pixel centroids of the cube on both backends (96x96)."""
DEPTH_TOL_M = 0.01


def joint_configurations(n: int = 5, seed: int = 0) -> list[FloatArray]:
    """Home plus ``n`` uniform random configurations inside the joint limits."""
    rng = np.random.default_rng(seed)
    spec = PybulletPandaDriver().spec
    lower, upper = spec.limits("lower"), spec.limits("upper")
    return [HOME_Q.copy(), *(rng.uniform(lower, upper) for _ in range(n))]


@pytest.fixture
def both() -> Iterator[tuple[PybulletPandaDriver, MujocoPandaDriver]]:
    """Connected PyBullet and MuJoCo Pandas on the cube-and-goal scene, 96x96 front RGB-D."""
    cameras = (CameraRequest("front", 96, 96, depth=True), CameraRequest("wrist", 96, 96))
    pb, mj = PybulletPandaDriver(SCENE, cameras), MujocoPandaDriver(SCENE, cameras)
    with pb, mj:
        yield pb, mj


@pytest.fixture
def pb() -> Iterator[PybulletPandaDriver]:
    """A connected PyBullet Panda on the cube-and-goal scene, without cameras."""
    with PybulletPandaDriver(SCENE) as driver:
        assert isinstance(driver, PybulletPandaDriver)
        yield driver


# ----------------------------------------------------------------- against MuJoCo


@pytest.mark.parametrize("index", range(6), ids=["home", *(f"random{i}" for i in range(5))])
def test_forward_kinematics_agree_with_mujoco(
    both: tuple[PybulletPandaDriver, MujocoPandaDriver], index: int
) -> None:
    pb, mj = both
    q = joint_configurations()[index]
    pb.reset_robot(q)
    mj.reset_robot(q)
    (pos_pb, quat_pb), (pos_mj, quat_mj) = pb.ee_pose(), mj.ee_pose()
    assert np.linalg.norm(pos_pb - pos_mj) < FK_TOL_M
    assert np.degrees(quat_angle_between(quat_pb, quat_mj)) < FK_TOL_DEG
    np.testing.assert_allclose(pb.joint_positions(), q, atol=1e-12)


@pytest.mark.parametrize("index", range(6), ids=["home", *(f"random{i}" for i in range(5))])
def test_camera_poses_agree_with_mujoco(
    both: tuple[PybulletPandaDriver, MujocoPandaDriver], index: int
) -> None:
    pb, mj = both
    q = joint_configurations()[index]
    pb.reset_robot(q)
    mj.reset_robot(q)
    for name in ("front", "wrist"):
        (pos_pb, quat_pb), (pos_mj, quat_mj) = pb.camera_pose(name), mj.camera_pose(name)
        assert np.linalg.norm(pos_pb - pos_mj) < FK_TOL_M, name
        assert np.degrees(quat_angle_between(quat_pb, quat_mj)) < FK_TOL_DEG, name


COMMANDS = [
    Command(ControlMode.JOINT_POSITION, joint_position=HOME_Q + 4.0, gripper_width=0.5),
    Command(
        ControlMode.JOINT_IMPEDANCE,
        joint_position=HOME_Q - 0.1,
        stiffness=np.full(7, 1e4),
        damping=np.full(7, -1.0),
        joint_torque=np.full(7, 50.0),
        gripper_width=-1.0,
    ),
    Command(
        ControlMode.JOINT_IMPEDANCE, joint_position=HOME_Q, stiffness=np.ones(7), damping=np.ones(7)
    ),
    Command(ControlMode.JOINT_TORQUE, joint_torque=np.full(7, -100.0), gripper_width=0.03),
    Command(ControlMode.JOINT_TORQUE, joint_torque=np.ones(7)),
    Command(ControlMode.EE_DELTA, ee_delta_pos=np.array([0.3, 0.0, -0.4])),
    Command(
        ControlMode.EE_DELTA,
        ee_delta_pos=np.array([0.01, -0.02, 0.0]),
        ee_delta_rot=np.array([0.0, 0.2, 0.9]),
        gripper_width=0.02,
    ),
]


@pytest.mark.parametrize("index", range(len(COMMANDS)))
def test_applied_commands_match_mujoco(
    both: tuple[PybulletPandaDriver, MujocoPandaDriver], index: int
) -> None:
    applied = [driver.command(COMMANDS[index]) for driver in both]
    pb_cmd, mj_cmd = applied
    assert pb_cmd.mode is mj_cmd.mode
    for name in ("joint_torque", "stiffness", "damping", "ee_delta_pos", "ee_delta_rot"):
        pb_value, mj_value = getattr(pb_cmd, name), getattr(mj_cmd, name)
        assert (pb_value is None) == (mj_value is None), name
        if pb_value is not None:
            np.testing.assert_array_equal(pb_value, mj_value, err_msg=name)
    pb_q, mj_q = pb_cmd.joint_position, mj_cmd.joint_position
    assert (pb_q is None) == (mj_q is None)
    if pb_q is not None and mj_q is not None:  # EE_DELTA: IK on two simulators' Jacobians
        assert np.abs(pb_q - mj_q).max() < 1e-6
    assert pb_cmd.gripper_width == mj_cmd.gripper_width


def red_centroid(image: np.ndarray) -> FloatArray:
    """(column, row) centroid of the clearly red pixels (the cube)."""
    img = image.astype(int)
    red = (img[:, :, 0] > 120) & (img[:, :, 1] < 90) & (img[:, :, 2] < 90)
    rows, cols = np.nonzero(red)
    assert rows.size >= 5, "the cube should be visible"
    return np.array([cols.mean(), rows.mean()])


@pytest.mark.parametrize("cube_xy", [(0.55, 0.1), (0.4, -0.15), (0.7, 0.0)])
def test_the_cube_appears_at_the_same_pixels(
    both: tuple[PybulletPandaDriver, MujocoPandaDriver], cube_xy: tuple[float, float]
) -> None:
    states: list[RobotState] = []
    for driver in both:
        driver.set_object_pose("cube", np.array([*cube_xy, CUBE.half_extents[2]]), UPRIGHT)
        driver.set_marker("goal", np.array([0.3, 0.3, 0.3]))  # out of the way
        states.append(driver.read())
    pb_state, mj_state = states
    gap = np.linalg.norm(
        red_centroid(pb_state.images["front"]) - red_centroid(mj_state.images["front"])
    )
    assert gap < CENTROID_TOL_PX


def test_depth_agrees_with_mujoco(both: tuple[PybulletPandaDriver, MujocoPandaDriver]) -> None:
    pb_depth, mj_depth = (driver.read().depths["front"] for driver in both)
    assert pb_depth.dtype == np.float32 and pb_depth.shape == (96, 96)
    assert np.all(np.isfinite(pb_depth)) and np.all(pb_depth > 0)
    assert abs(float(pb_depth[48, 48] - mj_depth[48, 48])) < DEPTH_TOL_M
    near = (pb_depth < 3.0) & (mj_depth < 3.0)  # table, robot, cube: not the far background
    assert near.mean() > 0.5
    assert np.median(np.abs(pb_depth - mj_depth)[near]) < 1e-3  # same pixel centres


def test_background_is_far_and_black() -> None:
    with PybulletPandaDriver(cameras=(CameraRequest("front", 48, 64, depth=True),)) as driver:
        state = driver.read()
    far = state.depths["front"] >= 9.99
    assert far.any(), "the front camera sees past the floor at the top of the image"
    assert np.all(state.images["front"][far] == 0)


def test_wrist_camera_follows_the_hand() -> None:
    driver = PybulletPandaDriver(cameras=(CameraRequest("wrist", 48, 64),))
    with driver:
        before = driver.read().images["wrist"].astype(int)
        driver.command(Command(ControlMode.JOINT_POSITION, joint_position=HOME_Q + 0.3))
        driver.wait(1.0)
        after = driver.read().images["wrist"].astype(int)
    assert np.abs(after - before).mean() > 5


def test_render_frame_at_any_size(pb: PybulletPandaDriver) -> None:
    frame = pb.render_frame("front", 30, 40)
    assert frame.shape == (30, 40, 3) and frame.dtype == np.uint8
    assert frame.std() > 10


# ----------------------------------------------------------------- scene accessors


def test_object_pose_and_velocity_round_trip(pb: PybulletPandaDriver) -> None:
    quat = yaw_quat(0.4)
    pb.set_object_pose("cube", np.array([0.55, -0.1, 0.1]), quat)
    pos, got_quat = pb.object_pose("cube")
    np.testing.assert_allclose(pos, [0.55, -0.1, 0.1], atol=1e-9)
    np.testing.assert_allclose(got_quat, quat, atol=1e-9)
    np.testing.assert_array_equal(pb.object_velocity("cube"), np.zeros(6))
    pb.set_object_velocity("cube", np.array([0.1, -0.2, 0.3]), np.array([1.0, 0.5, -0.25]))
    np.testing.assert_allclose(pb.object_velocity("cube"), [0.1, -0.2, 0.3, 1.0, 0.5, -0.25])
    pb.set_object_pose("cube", np.array([0.55, -0.1, 0.1]), quat)  # at rest again
    pb.wait(1.0)  # falls onto the table and settles
    pos, _ = pb.object_pose("cube")
    assert pos[2] == pytest.approx(CUBE.half_extents[2], abs=2e-3)
    np.testing.assert_allclose(pos[:2], [0.55, -0.1], atol=5e-3)
    assert np.linalg.norm(pb.object_velocity("cube")) < 0.01


def test_marker_moves_without_collisions(pb: PybulletPandaDriver) -> None:
    cube_pos = np.array([0.5, 0.2, CUBE.half_extents[2]])
    pb.set_object_pose("cube", cube_pos, UPRIGHT)
    pb.set_marker("goal", cube_pos)  # inside the cube: a marker never collides
    np.testing.assert_allclose(pb.object_pose("goal")[0], cube_pos)
    pb.wait(0.5)
    np.testing.assert_allclose(pb.object_pose("goal")[0], cube_pos)
    np.testing.assert_allclose(pb.object_pose("cube")[0], cube_pos, atol=2e-3)
    assert not pb.in_contact("goal", "cube")


def test_in_contact(pb: PybulletPandaDriver) -> None:
    pb.set_object_pose("cube", np.array([0.5, 0.1, CUBE.half_extents[2]]), UPRIGHT)
    assert pb.in_contact("cube", "table") and pb.in_contact("table", "cube")
    pb.wait(0.5)
    assert pb.in_contact("cube", "table")
    for link in ("panda_leftfinger", "panda_rightfinger", "panda_hand"):
        assert not pb.in_contact("cube", link)
    pb.set_object_pose("cube", np.array([0.5, 0.1, 0.3]), UPRIGHT)
    assert not pb.in_contact("cube", "table")


def test_grasp_and_lift_a_5cm_cube() -> None:
    half = 0.025
    scene = SceneConfig(objects=(SceneObject("cube", half_extents=(half,) * 3, mass=0.05),))
    with PybulletPandaDriver(scene) as driver:
        assert isinstance(driver, PybulletPandaDriver)
        cube = np.array([0.5, 0.05, half])
        driver.set_object_pose("cube", cube, UPRIGHT)

        def move_to(target: FloatArray, width: float, ticks: int) -> None:
            for _ in range(ticks):
                step = np.clip(target - driver.ee_pose()[0], -0.02, 0.02)
                driver.command(
                    Command(ControlMode.EE_DELTA, ee_delta_pos=step, gripper_width=width)
                )
                driver.wait(0.05)

        move_to(cube + np.array([0.0, 0.0, 0.1]), 0.08, 30)
        move_to(cube, 0.08, 30)
        move_to(cube, 0.0, 20)
        assert driver.in_contact("cube", "panda_leftfinger")
        assert driver.in_contact("cube", "panda_rightfinger")
        lifted = cube + np.array([0.1, -0.1, 0.15])
        move_to(lifted, 0.0, 60)
        pos, _ = driver.object_pose("cube")
        np.testing.assert_allclose(pos, lifted, atol=0.01)
        assert not driver.in_contact("cube", "table")


def test_impedance_at_the_largest_gains_holds_in_any_pose(pb: PybulletPandaDriver) -> None:
    # Explicit damping at MAX_DAMPING diverges in some of these poses (dt·eig(M⁻¹Kd) > 2).
    links = [f"panda_link{i}" for i in range(1, 8)] + ["panda_hand"]
    held = 0
    for q in joint_configurations(n=12, seed=3):
        pb.reset_robot(q)
        if any(pb.in_contact(link, "table") for link in links):
            continue  # a random pose inside the table: the table pushes back
        cmd = Command(
            ControlMode.JOINT_IMPEDANCE,
            joint_position=q,
            stiffness=np.full(7, MAX_STIFFNESS),
            damping=np.full(7, MAX_DAMPING),
        )
        for _ in range(10):
            pb.command(cmd)
            pb.wait(0.05)
        state = pb.read_proprio()
        np.testing.assert_allclose(state.q, q, atol=1e-6)
        assert np.abs(state.dq).max() < 1e-6
        held += 1
    assert held >= 5


def test_impedance_at_the_largest_gains_tracks_a_step(pb: PybulletPandaDriver) -> None:
    target = HOME_Q + 0.1
    cmd = Command(
        ControlMode.JOINT_IMPEDANCE,
        joint_position=target,
        stiffness=np.full(7, MAX_STIFFNESS),
        damping=np.full(7, MAX_DAMPING),
    )
    for _ in range(20):
        pb.command(cmd)
        pb.wait(0.05)
    state = pb.read()
    np.testing.assert_allclose(state.q, target, atol=1e-3)
    assert np.abs(state.dq).max() < 1e-2


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.object_pose("nope"),
        lambda d: d.object_velocity("goal"),  # a marker is not a free object
        lambda d: d.set_object_pose("nope", np.zeros(3), UPRIGHT),
        lambda d: d.set_object_velocity("nope", np.zeros(3), np.zeros(3)),
        lambda d: d.set_marker("cube", np.zeros(3)),  # an object is not a marker
        lambda d: d.in_contact("cube", "nope"),
        lambda d: d.camera_pose("nope"),
        lambda d: d.render_frame("nope", 8, 8),
    ],
    ids=[
        "object_pose",
        "object_velocity",
        "set_object_pose",
        "set_object_velocity",
        "set_marker",
        "in_contact",
        "camera_pose",
        "render_frame",
    ],
)
def test_unknown_names_raise_one_config_error(pb: PybulletPandaDriver, call: object) -> None:
    with pytest.raises(ConfigError, match="the scene has"):
        call(pb)  # type: ignore[operator]


@pytest.mark.parametrize(
    "request_",
    [CameraRequest("no_such_camera"), CameraRequest("front", 2000, 64)],
    ids=["unknown", "too-tall"],
)
def test_bad_camera_requests_raise_config_error(request_: CameraRequest) -> None:
    with pytest.raises(ConfigError):
        PybulletPandaDriver(cameras=(request_,))


def test_scene_names_must_be_unique() -> None:
    with pytest.raises(ConfigError):
        PybulletPandaDriver(SceneConfig(objects=(CUBE,), markers=(Marker("cube"),)))


@pytest.mark.parametrize("control_hz", [0.0, -5.0, 501.0])
def test_control_rate_outside_the_physics_rate_raises(control_hz: float) -> None:
    with pytest.raises(ConfigError):
        PybulletPandaDriver(control_hz=control_hz)


def test_spec_limits_are_the_urdf_limits(pb: PybulletPandaDriver) -> None:
    limits = urdf_joint_limits()
    for joint in pb.spec.joints:
        assert (joint.lower, joint.upper) == limits[joint.name]
    assert pb.spec.name == "pybullet_panda"
    assert pb.spec.max_control_hz == pytest.approx(1.0 / pb.physics_dt)


# ------------------------------------------------------- isolation and determinism


def scripted_run(driver: PybulletPandaDriver) -> None:
    """Every mode once, with the cube on the table near the hand."""
    driver.set_object_pose("cube", np.array([0.5, 0.1, CUBE.half_extents[2]]), UPRIGHT)
    for k in range(6):
        q = HOME_Q + 0.02 * k
        driver.command(Command(ControlMode.JOINT_POSITION, joint_position=q, gripper_width=0.03))
        driver.wait(0.05)
    for _ in range(4):
        driver.command(Command(ControlMode.EE_DELTA, ee_delta_pos=np.array([0.01, 0.0, -0.01])))
        driver.wait(0.05)
    stiffness = np.full(7, 300.0)
    driver.command(
        Command(
            ControlMode.JOINT_IMPEDANCE,
            joint_position=HOME_Q,
            stiffness=stiffness,
            damping=0.1 * stiffness,
        )
    )
    driver.wait(0.2)
    driver.command(Command(ControlMode.JOINT_TORQUE, joint_torque=np.full(7, 0.5)))
    driver.wait(0.2)


def snapshot(driver: PybulletPandaDriver) -> tuple[RobotState, FloatArray]:
    state = driver.read_proprio()
    return state, np.concatenate([*driver.object_pose("cube"), driver.object_velocity("cube")])


def assert_identical(a: tuple[RobotState, FloatArray], b: tuple[RobotState, FloatArray]) -> None:
    for name in ("timestamp", "q", "dq", "tau", "ee_pos", "ee_quat", "gripper_width"):
        np.testing.assert_array_equal(getattr(a[0], name), getattr(b[0], name), err_msg=name)
    np.testing.assert_array_equal(a[1], b[1])


def test_two_drivers_in_one_process_do_not_interfere() -> None:
    with PybulletPandaDriver(SCENE) as alone:
        assert isinstance(alone, PybulletPandaDriver)
        scripted_run(alone)
        expected = snapshot(alone)
    first, second = PybulletPandaDriver(SCENE), PybulletPandaDriver(SCENE)
    with first, second:
        idle = snapshot(second)
        scripted_run(first)
        assert_identical(snapshot(first), expected)
        assert_identical(snapshot(second), idle)  # untouched by the other's commands


def test_a_reset_driver_evolves_like_a_fresh_one() -> None:
    with PybulletPandaDriver(SCENE) as fresh:
        assert isinstance(fresh, PybulletPandaDriver)
        scripted_run(fresh)
        expected = snapshot(fresh)
        fresh.reset_robot(HOME_Q)
        assert fresh.now() == 0.0
        np.testing.assert_array_equal(fresh.joint_positions(), HOME_Q)
        scripted_run(fresh)
        assert_identical(snapshot(fresh), expected)


def test_reconnect_resets_to_home(pb: PybulletPandaDriver) -> None:
    scripted_run(pb)
    pb.disconnect()
    pb.connect()
    state = pb.read()
    np.testing.assert_array_equal(state.q, HOME_Q)
    assert state.timestamp == 0.0
    np.testing.assert_array_equal(state.tau, np.zeros(7))


def test_realtime_waits_are_paced_to_the_wall_clock() -> None:
    with PybulletPandaDriver(realtime=True) as driver:
        start = time.perf_counter()
        for _ in range(10):
            driver.wait(0.05)
        assert time.perf_counter() - start >= 0.45
        assert driver.now() == pytest.approx(0.5)


# ------------------------------------------------------------- domain randomization


def all_draws(targets: dict[str, list[str]], rng: np.random.Generator) -> dict[str, FloatArray]:
    """A draw for every scene parameter, far enough from nominal to be seen."""
    n = {kind: len(names) for kind, names in targets.items()}
    return {
        "link_mass_scale": rng.uniform(1.2, 1.5, n["links"]),
        "friction_scale": rng.uniform(0.5, 0.8, n["geoms"]),
        "joint_damping_scale": rng.uniform(1.5, 2.0, n["dofs"]),
        "actuator_gain_scale": rng.uniform(0.5, 0.8, n["servos"]),
        "object_size_scale": np.full(n["objects"], 1.25),
        "object_mass_scale": np.full(n["objects"], 2.0),
        "camera_pos_offset_m": np.full((n["cameras"], 3), 0.01),
        "camera_rot_offset_rad": np.tile([0.0, 0.0, 0.05], (n["cameras"], 1)),
        "light_pos_offset_m": np.full((n["lights"], 3), 0.2),
        "light_diffuse_scale": np.full(n["lights"], 0.5),
        "rgba_offset": np.full((n["colours"], 3), -0.2),
        "action_latency_ticks": np.array([2]),  # not a scene parameter: ignored
    }


def test_randomization_targets_name_every_kind(pb: PybulletPandaDriver) -> None:
    targets = pb.randomization_targets()
    assert set(targets) == {
        "links", "geoms", "dofs", "servos", "objects", "cameras", "lights", "colours"
    }  # fmt: skip
    assert "panda_hand" in targets["links"] and "panda_leftfinger" in targets["geoms"]
    assert {"table", "floor", "cube"} <= set(targets["geoms"])
    assert targets["dofs"][-1] == "panda_finger_joint2" and len(targets["servos"]) == 8
    assert targets["objects"] == ["cube"] and targets["cameras"] == ["front", "wrist"]
    assert {"table", "cube", "goal"} <= set(targets["colours"])


def test_randomization_changes_the_scene_and_nominal_restores_it() -> None:
    cameras = (CameraRequest("front", 48, 64),)
    with PybulletPandaDriver(SCENE, cameras) as driver:
        assert isinstance(driver, PybulletPandaDriver)
        nominal_image = driver.read().images["front"]
        nominal_camera = driver.camera_pose("front")
        draws = all_draws(driver.randomization_targets(), np.random.default_rng(0))
        driver.set_randomization(draws)
        driver.reset_robot(HOME_Q)
        driver.set_object_pose("cube", np.array([0.5, 0.0, 0.1]), UPRIGHT)
        driver.wait(1.0)
        assert driver.object_pose("cube")[0][2] == pytest.approx(1.25 * 0.02, abs=2e-3)
        assert not np.allclose(driver.camera_pose("front")[0], nominal_camera[0])
        assert np.abs(driver.read().images["front"].astype(int) - nominal_image).mean() > 5
        driver.set_randomization({})
        driver.reset_robot(HOME_Q)
        np.testing.assert_array_equal(driver.camera_pose("front")[0], nominal_camera[0])
        np.testing.assert_array_equal(driver.read().images["front"], nominal_image)
        driver.set_object_pose("cube", np.array([0.5, 0.0, 0.1]), UPRIGHT)
        driver.wait(1.0)
        assert driver.object_pose("cube")[0][2] == pytest.approx(0.02, abs=2e-3)


def test_randomized_runs_are_deterministic() -> None:
    runs = []
    for _ in range(2):
        with PybulletPandaDriver(SCENE) as driver:
            assert isinstance(driver, PybulletPandaDriver)
            driver.set_randomization(
                all_draws(driver.randomization_targets(), np.random.default_rng(1))
            )
            driver.reset_robot(HOME_Q)
            scripted_run(driver)
            runs.append(snapshot(driver))
    assert_identical(*runs)


def test_a_nominal_reset_after_randomization_evolves_like_a_fresh_driver() -> None:
    with PybulletPandaDriver(SCENE) as fresh:
        assert isinstance(fresh, PybulletPandaDriver)
        scripted_run(fresh)
        expected = snapshot(fresh)
    with PybulletPandaDriver(SCENE) as driver:
        assert isinstance(driver, PybulletPandaDriver)
        driver.set_randomization(
            all_draws(driver.randomization_targets(), np.random.default_rng(2))
        )
        driver.reset_robot(HOME_Q)
        scripted_run(driver)
        driver.set_randomization({})
        driver.reset_robot(HOME_Q)
        scripted_run(driver)
        assert_identical(snapshot(driver), expected)


def test_wrong_draw_shapes_raise_config_error(pb: PybulletPandaDriver) -> None:
    with pytest.raises(ConfigError, match="link_mass_scale"):
        pb.set_randomization({"link_mass_scale": np.ones(2)})
    with pytest.raises(ConfigError, match="camera_pos_offset_m"):
        pb.set_randomization({"camera_pos_offset_m": np.zeros((5, 3))})
    pb.set_randomization({})


def test_domain_randomization_runs_a_task_on_pybullet() -> None:
    from robolearn import envs
    from robolearn.envs.randomization import DomainRandomization, DomainRandomizationConfig

    env = DomainRandomization(
        envs.make("robolearn/FrankaLift-v0", backend="pybullet"),
        DomainRandomizationConfig.load("full"),
    )
    try:
        for seed in (0, 1):
            obs, info = env.reset(seed=seed)
            assert "link_mass_scale" in info["randomization"]
            for _ in range(3):
                obs, *_ = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_gravity_compensation_follows_randomized_link_masses(pb: PybulletPandaDriver) -> None:
    # PyBullet's inverse dynamics keeps the masses it first saw; the driver must not.
    n_links = len(pb.randomization_targets()["links"])
    pb.set_randomization({"link_mass_scale": np.full(n_links, 1.5)})
    pb.reset_robot(HOME_Q)
    zero = Command(ControlMode.JOINT_TORQUE, joint_torque=np.zeros(7))
    for _ in range(20):
        pb.command(zero)
        pb.wait(0.05)
    np.testing.assert_allclose(pb.joint_positions(), HOME_Q, atol=1e-3)
    pb.set_randomization({})


def test_position_servos_hold_against_gravity(pb: PybulletPandaDriver) -> None:
    q = joint_configurations()[3]
    pb.reset_robot(q)
    for _ in range(20):
        pb.command(Command(ControlMode.JOINT_POSITION, joint_position=q))
        pb.wait(0.05)
    state = pb.read_proprio()
    np.testing.assert_allclose(state.q, q, atol=1e-3)  # no sag: gravity is compensated
    assert np.abs(state.tau).max() < 1.0  # and not counted in tau, as on MuJoCo
