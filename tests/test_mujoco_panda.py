"""What only the MuJoCo Panda has: its model source, determinism, scene accessors, rendering
and configuration errors. The generic driver behaviour is in ``test_driver_contract.py``."""

from __future__ import annotations

import dataclasses
import os
import time
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pybullet_data
import pytest

from robolearn.core.types import Command, ConfigError, ControlMode, DriverError, RobotSpec
from robolearn.drivers.mujoco_panda import (
    HOME_Q,
    CameraRequest,
    Marker,
    MujocoPandaDriver,
    SceneConfig,
    SceneObject,
)
from robolearn.drivers.mujoco_panda.model import panda_urdf_dir

CUBE = SceneObject("cube")
GOAL = Marker("goal")


def panda_urdf() -> ET.Element:
    return ET.parse(os.path.join(panda_urdf_dir(), "panda.urdf")).getroot()


# ------------------------------------------------------------------------------- model


def test_model_comes_from_pybullet_data_and_its_meshes_exist() -> None:
    folder = panda_urdf_dir()
    assert folder.startswith(pybullet_data.getDataPath())
    meshes = {m.attrib["filename"] for m in panda_urdf().iter("mesh")}
    assert meshes, "the URDF references meshes"
    for name in meshes:
        path = name.replace("package://", folder + "/")
        assert os.path.isfile(path), f"{name} is not under {folder}"
    assert MujocoPandaDriver().model.nmesh > 0


def test_spec_limits_are_the_urdf_limits() -> None:
    spec = MujocoPandaDriver().spec
    joints = {j.get("name"): j.find("limit") for j in panda_urdf().iter("joint")}
    for joint in spec.joints:
        limit = joints[joint.name]
        assert limit is not None, joint.name
        assert joint.lower == pytest.approx(float(limit.get("lower", "nan")))
        assert joint.upper == pytest.approx(float(limit.get("upper", "nan")))


# ------------------------------------------------------------------------- determinism


def scripted_run(driver: MujocoPandaDriver) -> None:
    """A command sequence through every mode, with a cube in contact with the table."""
    for k in range(10):
        driver.command(
            Command(
                ControlMode.JOINT_POSITION, joint_position=HOME_Q + 0.02 * k, gripper_width=0.03
            )
        )
        driver.wait(0.05)
    for _ in range(5):
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


def test_same_commands_give_bitwise_identical_states() -> None:
    runs = []
    for _ in range(2):
        driver = MujocoPandaDriver(SceneConfig(objects=(CUBE,)))
        with driver:
            driver.set_object_pose("cube", np.array([0.5, 0.1, 0.02]), np.array([1.0, 0, 0, 0]))
            scripted_run(driver)
            runs.append((driver.data.qpos.copy(), driver.data.qvel.copy(), driver.now()))
    (qpos_a, qvel_a, t_a), (qpos_b, qvel_b, t_b) = runs
    np.testing.assert_array_equal(qpos_a, qpos_b)
    np.testing.assert_array_equal(qvel_a, qvel_b)
    assert t_a == t_b


def test_reconnect_resets_to_home(panda: MujocoPandaDriver) -> None:
    scripted_run(panda)
    panda.disconnect()
    panda.connect()
    state = panda.read()
    np.testing.assert_array_equal(state.q, HOME_Q)
    assert state.timestamp == 0.0


# ------------------------------------------------------------------- scene accessors


def test_object_pose_set_and_get() -> None:
    driver = MujocoPandaDriver(SceneConfig(objects=(CUBE,)))
    with driver:
        quat = np.array([np.cos(0.2), 0.0, 0.0, np.sin(0.2)])  # 0.4 rad about z
        driver.set_object_pose("cube", np.array([0.55, -0.1, 0.1]), quat)
        pos, got_quat = driver.object_pose("cube")
        np.testing.assert_allclose(pos, [0.55, -0.1, 0.1])
        np.testing.assert_allclose(got_quat, quat)
        np.testing.assert_array_equal(driver.object_velocity("cube"), np.zeros(6))
        driver.wait(1.0)  # falls onto the table and settles
        pos, _ = driver.object_pose("cube")
        assert pos[2] == pytest.approx(CUBE.half_extents[2], abs=2e-3)
        np.testing.assert_allclose(pos[:2], [0.55, -0.1], atol=5e-3)
        assert np.linalg.norm(driver.object_velocity("cube")) < 0.01


def test_marker_set_moves_it_without_collisions() -> None:
    scene = SceneConfig(objects=(CUBE,), markers=(GOAL,))
    driver = MujocoPandaDriver(scene)
    with driver:
        cube_pos = np.array([0.5, 0.2, CUBE.half_extents[2]])
        driver.set_object_pose("cube", cube_pos, np.array([1.0, 0, 0, 0]))
        driver.set_marker("goal", cube_pos)  # inside the cube: a marker never collides
        np.testing.assert_allclose(driver.object_pose("goal")[0], cube_pos)
        driver.wait(0.5)
        np.testing.assert_allclose(driver.object_pose("goal")[0], cube_pos)
        np.testing.assert_allclose(driver.object_pose("cube")[0], cube_pos, atol=2e-3)


def test_scene_names_must_be_unique() -> None:
    with pytest.raises(ConfigError):
        MujocoPandaDriver(SceneConfig(objects=(CUBE,), markers=(Marker("cube"),)))


# --------------------------------------------------------------------------- rendering


def test_front_camera_renders_a_scene() -> None:
    driver = MujocoPandaDriver(cameras=(CameraRequest("front", 64, 64),))
    with driver:
        image = driver.read().images["front"]
    assert image.std() > 10, "a constant image means nothing was drawn"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50


def ray_depths(driver: MujocoPandaDriver, name: str, pixels: list[tuple[int, int]]) -> list:
    """Depth along the camera axis and the geom hit, by casting MuJoCo rays through pixels."""
    k = driver.spec.camera(name).intrinsics
    cam = driver.model.camera(name).id
    origin, rot = driver.data.cam_xpos[cam], driver.data.cam_xmat[cam].reshape(3, 3)
    out = []
    for row, col in pixels:
        ray_cam = np.array([(col - k.cx) / k.fx, -(row - k.cy) / k.fy, -1.0])  # looks along -z
        geom = np.zeros(1, dtype=np.int32)
        visible = np.array([1, 1, 1, 0, 0, 0], dtype=np.uint8)  # groups the renderer draws
        m, d = driver.model, driver.data
        depth = mujoco.mj_ray(m, d, origin, rot @ ray_cam, visible, 1, -1, geom)
        out.append((depth, driver.model.geom(geom[0]).name if geom[0] >= 0 else None))
    return out


def test_depth_matches_ray_casts_onto_the_table() -> None:
    driver = MujocoPandaDriver(cameras=(CameraRequest("front", 64, 64, depth=True),))
    with driver:
        depth = driver.read().depths["front"]
        pixels = [(r, c) for r in range(8, 64, 8) for c in range(4, 64, 8)]
        hits = ray_depths(driver, "front", pixels)
    on_table = [(px, d) for px, (d, geom) in zip(pixels, hits, strict=True) if geom == "table"]
    assert len(on_table) >= 5, "the front camera should see the table"
    for (row, col), expected in on_table:
        assert 0.3 < expected < 3.0, "the table is within a few metres of the camera"
        assert depth[row, col] == pytest.approx(expected, abs=0.01), (row, col)


def test_wrist_camera_follows_the_hand() -> None:
    driver = MujocoPandaDriver(cameras=(CameraRequest("wrist", 48, 64),))
    with driver:
        before = driver.read().images["wrist"].astype(int)
        driver.command(Command(ControlMode.JOINT_POSITION, joint_position=HOME_Q + 0.3))
        driver.wait(1.0)
        after = driver.read().images["wrist"].astype(int)
    assert np.abs(after - before).mean() > 5


@pytest.mark.parametrize(
    "request_",
    [
        CameraRequest("no_such_camera"),
        CameraRequest("front", 2000, 64),
        CameraRequest("front", 64, 2000),
    ],
    ids=["unknown", "too-tall", "too-wide"],
)
def test_bad_camera_requests_raise_config_error(request_: CameraRequest) -> None:
    with pytest.raises(ConfigError):
        MujocoPandaDriver(cameras=(request_,))


def test_larger_offscreen_buffer_allows_larger_images() -> None:
    scene = SceneConfig(offscreen_size=(720, 1280))
    spec = MujocoPandaDriver(scene, cameras=(CameraRequest("front", 720, 1280),)).spec
    assert spec.camera("front").intrinsics.width == 1280


# ------------------------------------------------------------------------------- rates


@pytest.mark.parametrize("control_hz", [0.0, -5.0, 501.0, 1000.0])
def test_control_rate_outside_the_physics_rate_raises(control_hz: float) -> None:
    with pytest.raises(ConfigError):
        MujocoPandaDriver(control_hz=control_hz)


def test_control_rate_up_to_the_physics_rate_is_accepted() -> None:
    spec = MujocoPandaDriver(control_hz=500.0).spec
    assert spec.control_hz == spec.max_control_hz == 500.0


def test_realtime_waits_are_paced_to_the_wall_clock() -> None:
    driver = MujocoPandaDriver(realtime=True)
    with driver:
        start = time.perf_counter()
        for _ in range(10):
            driver.wait(0.05)
        assert time.perf_counter() - start >= 0.45
        assert driver.now() == pytest.approx(0.5)


# ------------------------------------------------------------ the base class's checks


class PositionOnlyPanda(MujocoPandaDriver):
    """The simulated Panda declaring a single mode, to exercise the base class's mode check."""

    @property
    def spec(self) -> RobotSpec:
        modes = frozenset({ControlMode.JOINT_POSITION})
        return dataclasses.replace(super().spec, control_modes=modes)


def test_undeclared_modes_are_refused_before_the_driver_sees_them() -> None:
    driver = PositionOnlyPanda()
    with driver:
        start = driver.read()
        for mode in set(ControlMode) - {ControlMode.JOINT_POSITION}:
            with pytest.raises(DriverError, match=mode.value):
                driver.command(Command(mode, joint_torque=np.ones(7), gripper_width=0.0))
        driver.wait(0.25)
        np.testing.assert_allclose(driver.read().q, start.q, atol=1e-3)
        assert driver.read().gripper_width == pytest.approx(start.gripper_width, abs=1e-3)


def test_torch_compiler_stack_imports_after_rendering() -> None:
    """Rendering first, then importing diffusers (which imports torch._dynamo and Triton) in
    the same process: Mesa's and Triton's LLVMs used to collide there (a segfault in eval
    workers of image Diffusion Policies). A fresh process, so the order is the one under test."""
    import subprocess
    import sys

    script = (
        "import envs\n"
        "env = envs.make('robolearn/FrankaLift-v0', obs_mode='image', cameras=('front',),"
        " image_size=(32, 32))\n"
        "obs, _ = env.reset(seed=0)\n"
        "assert obs['front_rgb'].std() > 0\n"
        "import diffusers  # noqa\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
