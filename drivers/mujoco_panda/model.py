"""Build the MuJoCo scene: the Franka Panda that ``pybullet_data`` ships, on a table.

The URDF (``franka_panda/panda.urdf`` and its OBJ meshes) is parsed by MuJoCo itself, so the
very same robot description can run in PyBullet. On top of it this module adds what a URDF
cannot carry: position-servo actuators with tuned gains, the finger mimic coupling, joint
armature, gravity compensation (a real Franka compensates gravity in its controller), the
table, lights, the front and wrist cameras, and task objects/markers.
"""

from __future__ import annotations

import os
import warnings

import mujoco
import numpy as np

from robolearn.core.geometry import quat_from_mat
from robolearn.core.types import FloatArray
from robolearn.drivers.panda import (
    ARM_JOINTS,
    ARM_KD,
    ARM_KP,
    DEFAULT_CAMERAS,
    EE_LINK,
    FINGER_JOINTS,
    FINGER_LINKS,
    HOME_Q,
    TABLE,
    TABLE_CENTER_XY,
    TABLE_HALF_EXTENTS,
    CameraMount,
    Marker,
    SceneConfig,
    SceneObject,
    look_at_axes,
    panda_urdf_dir,
)

__all__ = [
    "ARM_JOINTS",
    "DEFAULT_CAMERAS",
    "EE_SITE",
    "FINGER_JOINTS",
    "HOME_Q",
    "CameraMount",
    "Marker",
    "SceneConfig",
    "SceneObject",
    "build_model",
    "panda_urdf_dir",
]

EE_SITE = "ee"
"""The MuJoCo site at the URDF's ``panda_grasptarget`` frame."""

ARM_ARMATURE = 0.1
ARM_DAMPING = 2.0
FINGER_KP = 2000.0
FINGER_KD = 40.0


def _load_panda_spec() -> mujoco.MjSpec:
    folder = panda_urdf_dir()
    with open(os.path.join(folder, "panda.urdf")) as fh:
        text = fh.read().replace("package://", folder + "/")
    compiler = (
        '<mujoco><compiler discardvisual="false" strippath="false" fusestatic="false"'
        ' balanceinertia="true"/></mujoco>'
    )
    start = text.index("<robot")
    end = text.index(">", start) + 1
    text = text[:end] + compiler + text[end:]
    return mujoco.MjSpec.from_string(text)


def _look_at_quat(eye: FloatArray, target: FloatArray, up: FloatArray) -> FloatArray:
    return quat_from_mat(look_at_axes(eye, target, up))  # MuJoCo cameras look along -z


def _split_visual_collision(spec: mujoco.MjSpec) -> None:
    # MuJoCo's URDF parser gives <visual> geoms contype=0; those are drawn (group 2), the
    # collision geoms are hidden in group 3.
    for geom in spec.geoms:
        if geom.meshname:
            geom.group = 2 if geom.contype == 0 else 3
            geom.rgba = [0.92, 0.92, 0.95, 1.0]
    for name in FINGER_LINKS:
        for geom in spec.body(name).geoms:
            if geom.contype:
                geom.friction = [1.5, 0.02, 0.001]
                geom.condim = 4
                geom.priority = 1


def _configure_robot(spec: mujoco.MjSpec) -> None:
    for i, name in enumerate(ARM_JOINTS):
        joint = spec.joint(name)
        joint.armature, joint.damping = ARM_ARMATURE, [ARM_DAMPING, 0.0, 0.0]
        act = spec.add_actuator(name=f"act_{name}", target=name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[0] = ARM_KP[i]
        act.biasprm[:3] = [0.0, -ARM_KP[i], -ARM_KD[i]]
        act.ctrllimited, act.ctrlrange = True, joint.range
        act.forcelimited = True
        effort = 87.0 if i < 4 else 12.0
        act.forcerange = [-effort, effort]
    for name in FINGER_JOINTS:
        spec.joint(name).armature, spec.joint(name).damping = 0.01, [5.0, 0.0, 0.0]
    grip = spec.add_actuator(name="act_gripper", target=FINGER_JOINTS[0])
    grip.trntype = mujoco.mjtTrn.mjTRN_JOINT
    grip.gaintype, grip.biastype = mujoco.mjtGain.mjGAIN_FIXED, mujoco.mjtBias.mjBIAS_AFFINE
    grip.gainprm[0] = FINGER_KP
    grip.biasprm[:3] = [0.0, -FINGER_KP, -FINGER_KD]
    grip.ctrllimited, grip.ctrlrange = True, [0.0, 0.04]
    grip.forcelimited, grip.forcerange = True, [-20.0, 20.0]
    mimic = spec.add_equality(name="finger_mimic", type=mujoco.mjtEq.mjEQ_JOINT)
    mimic.objtype = mujoco.mjtObj.mjOBJ_JOINT
    mimic.name1, mimic.name2 = FINGER_JOINTS[1], FINGER_JOINTS[0]
    mimic.solref = [0.005, 1.0]
    for body in spec.bodies:
        if body.name.startswith("panda_"):
            body.gravcomp = 1.0
    spec.body(EE_LINK).add_site(
        name=EE_SITE, size=[0.005, 0.005, 0.005], rgba=[1, 0, 0, 0], group=4
    )


def _add_environment(spec: mujoco.MjSpec, cfg: SceneConfig) -> None:
    spec.option.timestep = cfg.physics_dt
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.global_.offheight, spec.visual.global_.offwidth = cfg.offscreen_size
    world = spec.worldbody
    world.add_light(
        name="key",
        pos=[0.8, -0.6, 1.8],
        dir=[-0.3, 0.3, -1.0],
        diffuse=[0.8, 0.8, 0.8],
        castshadow=False,
    )
    world.add_light(
        name="fill",
        pos=[0.0, 0.8, 1.5],
        dir=[0.3, -0.5, -1.0],
        diffuse=[0.4, 0.4, 0.4],
        castshadow=False,
    )
    hx, hy, hz = TABLE_HALF_EXTENTS
    world.add_geom(
        name=TABLE,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[hx, hy, hz],
        pos=[TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], -hz],
        rgba=[0.55, 0.45, 0.35, 1],
    )
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[3, 3, 0.1],
        pos=[0, 0, -0.75],
        rgba=[0.3, 0.32, 0.35, 1],
    )
    for obj in cfg.objects:
        body = world.add_body(name=obj.name, pos=[0.5, 0.0, obj.half_extents[2]])
        body.add_freejoint(name=f"{obj.name}_joint")
        body.add_geom(
            name=obj.name,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(obj.half_extents),
            mass=obj.mass,
            rgba=list(obj.rgba),
            condim=4,
            friction=[obj.friction, 0.02, 0.001],
        )
    for marker in cfg.markers:
        body = world.add_body(name=marker.name, mocap=True, pos=[0.5, 0.0, 0.1])
        body.add_geom(
            name=marker.name,
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[marker.radius, 0, 0],
            rgba=list(marker.rgba),
            contype=0,
            conaffinity=0,
            group=1,
        )


def _add_cameras(spec: mujoco.MjSpec, cameras: tuple[CameraMount, ...]) -> None:
    for mount in cameras:
        parent = spec.worldbody if mount.body is None else spec.body(mount.body)
        eye, target = np.array(mount.pos), np.array(mount.look_at)
        quat = _look_at_quat(eye, target, np.array(mount.up))
        parent.add_camera(
            name=mount.name, pos=list(mount.pos), quat=list(quat), fovy=mount.fovy_deg
        )


def build_model(cfg: SceneConfig) -> mujoco.MjModel:
    """Compile the Panda-on-a-table scene described by ``cfg``."""
    cfg.check_names()
    spec = _load_panda_spec()
    _split_visual_collision(spec)
    _configure_robot(spec)
    _add_environment(spec, cfg)
    _add_cameras(spec, cfg.cameras)
    with warnings.catch_warnings():
        # pybullet_data's visual OBJ files lack some texture coordinates; MuJoCo drops them.
        warnings.filterwarnings("ignore", message=".*texture coordinate.*")
        return spec.compile()
