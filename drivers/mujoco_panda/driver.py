"""MuJoCo simulation of the Franka Panda behind the driver contract."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from robolearn.core.geometry import quat_from_mat
from robolearn.core.timing import precise_sleep_until
from robolearn.core.types import (
    Command,
    ConfigError,
    ControlMode,
    FloatArray,
    RobotSpec,
    RobotState,
    require_finite,
)
from robolearn.drivers.kinematics import DifferentialIK
from robolearn.drivers.mujoco_panda.model import ARM_KD, ARM_KP, EE_SITE, build_model
from robolearn.drivers.mujoco_panda.randomize import MujocoRandomizer
from robolearn.drivers.mujoco_panda.render import CameraRenderer
from robolearn.drivers.panda import (
    ARM_JOINTS,
    FINGER_JOINTS,
    HOME_Q,
    MAX_GRIPPER_WIDTH,
    TABLE,
    CameraRequest,
    SceneConfig,
    SimulatedPanda,
    divergence,
    ee_delta_steps,
    gripper_target,
    impedance_targets,
    panda_spec,
)

_BAD_STATE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
)


@dataclass(frozen=True)
class _Gains:
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    torque: bool = False
    tau_ff: tuple[float, ...] = (0.0,) * 7


_POSITION_GAINS = _Gains(tuple(ARM_KP), tuple(ARM_KD))
_TORQUE_GAINS = _Gains((0.0,) * 7, (0.0,) * 7, torque=True)


class MujocoPandaDriver(SimulatedPanda):
    """A simulated Franka Panda on a table, with optional offscreen cameras.

    ``wait(duration_s)`` advances physics by ``duration_s`` of simulated time; with
    ``realtime=True`` it also paces itself to the wall clock, like a real arm. Implements the
    scene contract :class:`~robolearn.drivers.panda.SimulatedPanda`.
    """

    backend = "mujoco"

    def __init__(
        self,
        scene: SceneConfig | None = None,
        cameras: Sequence[CameraRequest] = (),
        control_hz: float = 20.0,
        realtime: bool = False,
    ) -> None:
        super().__init__()
        self.scene = scene or SceneConfig()
        self.model = build_model(self.scene)
        self.data = mujoco.MjData(self.model)
        self._realtime = realtime
        self._wall_offset: float | None = None
        self._ik = DifferentialIK(self.model, EE_SITE, ARM_JOINTS)
        self._renderer = CameraRenderer(self.model, cameras)
        self._spec = self._build_spec(control_hz)
        self._site = self.model.site(EE_SITE).id
        self._qadr = np.array([self.model.joint(n).qposadr[0] for n in ARM_JOINTS])
        self._vadr = np.array([self.model.joint(n).dofadr[0] for n in ARM_JOINTS])
        self._finger_qadr = np.array([self.model.joint(n).qposadr[0] for n in FINGER_JOINTS])
        self._lower = self._spec.limits("lower")
        self._upper = self._spec.limits("upper")
        self._effort = self._spec.limits("max_effort")
        self._gains: _Gains | None = None
        self._gripper_target = MAX_GRIPPER_WIDTH
        self._object_names = [o.name for o in self.scene.objects]
        self._object_bodies = [self.model.body(n).id for n in self._object_names]
        free = [self.model.joint(f"{n}_joint").dofadr[0] for n in self._object_names]
        self._object_linear = (np.array(free, dtype=int)[:, None] + np.arange(3)).ravel()
        self._object_angular = self._object_linear + 3
        self._robot_dofs = np.concatenate(
            [self._vadr, [self.model.joint(n).dofadr[0] for n in FINGER_JOINTS]]
        )
        self._marker_names = [m.name for m in self.scene.markers]
        self._frame_renderer: tuple[tuple[str, int, int], CameraRenderer] | None = None
        self._ee_quat: FloatArray | None = None
        self._position_gains = _POSITION_GAINS
        # Nominal copies of the model are taken now, while it holds the position gains.
        self.randomizer = MujocoRandomizer(self.model, self._object_names)
        """The model-field writer behind :meth:`set_randomization` (its ``nominal`` fields)."""

    # ----------------------------------------------------------------- spec
    def _build_spec(self, control_hz: float) -> RobotSpec:
        limits = {n: tuple(self.model.joint(n).range) for n in ARM_JOINTS}
        return panda_spec(
            "mujoco_panda", limits, control_hz, self.model.opt.timestep, self._renderer.specs
        )

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    @property
    def realtime(self) -> bool:
        return self._realtime

    @property
    def physics_dt(self) -> float:
        return float(self.model.opt.timestep)

    # ------------------------------------------------------- connect/reset
    def _connect(self) -> None:
        self.reset_robot(HOME_Q, gripper_width=0.08)
        self._renderer.open()

    def _disconnect(self) -> None:
        self._renderer.close()
        if self._frame_renderer is not None:
            self._frame_renderer[1].close()
            self._frame_renderer = None

    def reset_robot(self, q: FloatArray, gripper_width: float = 0.08) -> None:
        """Reset the simulation: the arm at ``q`` at rest, position control, gripper set."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qadr] = q
        self.data.qpos[self._finger_qadr] = gripper_width / 2.0
        self._set_gains(self._position_gains)
        self.data.ctrl[:7] = q
        self._gripper_target = float(gripper_width)
        self.data.ctrl[7] = gripper_width / 2.0
        mujoco.mj_forward(self.model, self.data)
        self._ee_quat = None
        self._wall_offset = None

    # ---------------------------------------------------------------- read
    def _read(self) -> RobotState:
        state = self.read_proprio()
        state.images, state.depths = self._renderer.render(self.data)
        return state

    def read_proprio(self) -> RobotState:
        """The robot's state without rendering any camera (cheap; simulation only)."""
        d = self.data
        pos, quat = self.ee_pose()
        return RobotState(
            timestamp=float(d.time),
            q=d.qpos[self._qadr].copy(),
            dq=d.qvel[self._vadr].copy(),
            tau=d.actuator_force[:7].copy(),
            ee_pos=pos,
            ee_quat=quat,
            gripper_width=self.gripper_width(),
        )

    def ee_pose(self) -> tuple[FloatArray, FloatArray]:
        """End-effector position (3,) and quaternion (4,) without rendering cameras."""
        if self._ee_quat is None:  # once per physics state: the pose is read several times
            self._ee_quat = np.empty(4)
            mujoco.mju_mat2Quat(self._ee_quat, self.data.site_xmat[self._site])
        return self.data.site_xpos[self._site].copy(), self._ee_quat.copy()

    def joint_positions(self) -> FloatArray:
        """Arm joint positions (7,) without rendering cameras."""
        return self.data.qpos[self._qadr].copy()

    def gripper_width(self) -> float:
        """Current finger opening in m."""
        qpos = self.data.qpos
        return float(qpos[self._finger_qadr[0]] + qpos[self._finger_qadr[1]])

    # ------------------------------------------------------------- command
    def _command(self, cmd: Command) -> Command:
        # The whole command is validated before any of it reaches the simulation: a rejected
        # arm command must not leave its gripper width applied, nor a bad width its arm target.
        gripper = gripper_target(cmd.gripper_width, self._gripper_target)
        applied = self._apply_arm(cmd, gripper)
        self._gripper_target = gripper
        self.data.ctrl[7] = gripper / 2.0
        return applied

    def _apply_arm(self, cmd: Command, gripper: float) -> Command:
        if cmd.mode is ControlMode.JOINT_POSITION:
            q = self._apply_position(require_finite("joint_position", cmd.joint_position, (7,)))
            return Command(cmd.mode, joint_position=q, gripper_width=gripper)
        if cmd.mode is ControlMode.JOINT_IMPEDANCE:
            return self._apply_impedance(cmd, gripper)
        if cmd.mode is ControlMode.JOINT_TORQUE:
            tau = require_finite("joint_torque", cmd.joint_torque, (7,))
            self._set_gains(_TORQUE_GAINS)
            tau = np.clip(tau, -self._effort, self._effort)
            self.data.ctrl[:7] = tau
            return Command(cmd.mode, joint_torque=tau, gripper_width=gripper)
        return self._apply_ee_delta(cmd, gripper)

    def _apply_position(self, q: FloatArray) -> FloatArray:
        self._set_gains(self._position_gains)
        q = q.clip(self._lower, self._upper)
        self.data.ctrl[:7] = q
        return q

    def _apply_impedance(self, cmd: Command, gripper: float) -> Command:
        applied = impedance_targets(cmd, self._lower, self._upper, self._effort)
        kp, kd, tau_ff = applied.stiffness, applied.damping, applied.joint_torque
        assert kp is not None and kd is not None and tau_ff is not None
        self._set_gains(_Gains(tuple(kp), tuple(kd), tau_ff=tuple(tau_ff)))
        self.data.ctrl[:7] = applied.joint_position
        return applied.with_(gripper_width=gripper)

    def _apply_ee_delta(self, cmd: Command, gripper: float) -> Command:
        dpos, drot = ee_delta_steps(cmd)
        # One damped-least-squares step per command towards (pose + delta): its error is the
        # delta itself, and the simulation's own kinematics give the Jacobian. The next
        # command starts from the measured pose, so the residual of the linearised step is
        # corrected on the next tick.
        q = self._ik.step_in(self.data, self.data.qpos[self._qadr], dpos, drot)
        q = self._apply_position(q)
        return Command(
            cmd.mode, ee_delta_pos=dpos, ee_delta_rot=drot, joint_position=q, gripper_width=gripper
        )

    def _set_gains(self, gains: _Gains) -> None:
        if gains == self._gains:
            return
        m = self.model
        kp, kd = np.asarray(gains.kp), np.asarray(gains.kd)
        m.actuator_gainprm[:7, 0] = 1.0 if gains.torque else kp
        m.actuator_biasprm[:7, 0] = gains.tau_ff
        m.actuator_biasprm[:7, 1] = -kp
        m.actuator_biasprm[:7, 2] = -kd
        if gains.torque:
            m.actuator_ctrlrange[:7] = np.column_stack([-self._effort, self._effort])
        else:
            m.actuator_ctrlrange[:7] = np.column_stack([self._lower, self._upper])
        self._gains = gains

    # --------------------------------------------------------------- clock
    def now(self) -> float:
        return float(self.data.time)

    def wait(self, duration_s: float) -> float:
        """Advance physics by ``duration_s`` rounded to whole physics steps (at least one)."""
        if duration_s <= 0:
            return float(self.data.time)
        return self._advance(max(1, round(duration_s / self.model.opt.timestep)))

    def wait_until(self, t: float) -> float:
        """Advance physics to simulated time ``t`` (rounded to whole physics steps; none if
        ``t`` has passed). With ``realtime=True`` both also pace to the wall clock."""
        return self._advance(round((t - self.data.time) / self.model.opt.timestep))

    def _advance(self, nstep: int) -> float:
        if nstep > 0:
            mujoco.mj_step(self.model, self.data, nstep)
            # mj_step leaves poses (site, geoms, cameras) at the state before its last
            # integration; bring them to the new qpos so read(), renders and EE_DELTA agree.
            self._update_poses()
        if self._realtime:
            self._pace_to_wall_clock()
        return float(self.data.time)

    def _update_poses(self) -> None:
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        if self._renderer.specs:  # camera poses, for the renders; camera_pose() does its own
            mujoco.mj_camlight(self.model, self.data)
        self._ee_quat = None

    def _pace_to_wall_clock(self) -> None:
        now = time.perf_counter()
        if self._wall_offset is None:
            self._wall_offset = now - self.data.time
        precise_sleep_until(self._wall_offset + self.data.time)

    # ------------------------------------------------- simulation accessors
    def ik(self) -> DifferentialIK:
        """The inverse-kinematics solver on this robot's model."""
        return self._ik

    def object_pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """World position (3,) and quaternion (4,) of a scene object or marker."""
        body = self._body(name)
        return self.data.xpos[body].copy(), self.data.xquat[body].copy()

    def object_velocity(self, name: str) -> FloatArray:
        """Linear (3,) then angular (3,) velocity of a free scene object, world frame."""
        adr = self._free_joint(name).dofadr[0]
        # A free joint's qvel is the world-frame linear and the body-frame angular velocity.
        rot = self.data.xmat[self._body(name)].reshape(3, 3)
        return np.concatenate(
            [self.data.qvel[adr : adr + 3], rot @ self.data.qvel[adr + 3 : adr + 6]]
        )

    def set_object_pose(self, name: str, pos: FloatArray, quat: FloatArray) -> None:
        """Place a free scene object at rest."""
        joint = self._free_joint(name)
        self.data.qpos[joint.qposadr[0] : joint.qposadr[0] + 7] = np.concatenate([pos, quat])
        self.data.qvel[joint.dofadr[0] : joint.dofadr[0] + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self._ee_quat = None

    def set_object_velocity(self, name: str, linear: FloatArray, angular: FloatArray) -> None:
        """Set a free object's world-frame linear and angular velocity."""
        adr = self._free_joint(name).dofadr[0]
        # A free joint's angular velocity is in the body frame in MuJoCo.
        rot = self.data.xmat[self._body(name)].reshape(3, 3)
        self.data.qvel[adr : adr + 6] = np.concatenate([linear, rot.T @ np.asarray(angular)])

    def set_marker(self, name: str, pos: FloatArray) -> None:
        """Move a visual marker (e.g. a goal)."""
        if name not in self._marker_names:
            raise ConfigError(f"unknown marker {name!r}; the scene has: {self._marker_names}")
        self.data.mocap_pos[self.model.body(name).mocapid[0]] = pos
        self._update_poses()  # visible to object_pose() and the next render at once

    def in_contact(self, body_a: str, body_b: str) -> bool:
        """Whether two bodies (objects, ``table``, Panda links) touch now."""
        a, b = self._body(body_a), self._body(body_b)
        d, m = self.data, self.model
        for i in range(d.ncon):
            pair = {int(m.geom_bodyid[d.contact.geom1[i]]), int(m.geom_bodyid[d.contact.geom2[i]])}
            if pair == {a, b}:
                return True
        return False

    def camera_pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """World pose of a scene camera: position (3,), quaternion (4,); looks along -z."""
        cam = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cam < 0:
            known = ", ".join(c.name for c in self.scene.cameras)
            raise ConfigError(f"unknown camera {name!r}; the scene has: {known}")
        mujoco.mj_camlight(self.model, self.data)
        return self.data.cam_xpos[cam].copy(), quat_from_mat(self.data.cam_xmat[cam])

    def render_frame(self, camera: str, height: int, width: int) -> np.ndarray:
        """One RGB frame (H, W, 3) uint8 of a scene camera at any size (for ``env.render``)."""
        key = (camera, height, width)
        if self._frame_renderer is None or self._frame_renderer[0] != key:
            if self._frame_renderer is not None:
                self._frame_renderer[1].close()
            renderer = CameraRenderer(self.model, [CameraRequest(camera, height, width)])
            renderer.open()
            self._frame_renderer = (key, renderer)
        mujoco.mj_camlight(self.model, self.data)  # skipped by stepping when no camera reads
        images, _ = self._frame_renderer[1].render(self.data)
        return images[camera]

    def physics_fault(self) -> str | None:
        """MuJoCo's own bad-acceleration/position/velocity warnings (the solver reset the
        state), else a NaN or runaway joint or object speed, or an object thrown out."""
        d = self.data
        for kind in _BAD_STATE_WARNINGS:
            if d.warning[kind].number:
                return f"MuJoCo reported {kind.name} at t={d.time:.3f} s and reset the state"
        qvel = d.qvel
        return divergence(
            qvel[self._robot_dofs],
            qvel[self._object_linear],
            qvel[self._object_angular],  # body frame: its size is the world frame's
            d.xpos[self._object_bodies],
        )

    def randomization_targets(self) -> dict[str, list[str]]:
        """Element names per randomized kind (links, geoms, dofs, servos, objects, cameras,
        lights, colours), in the order draws are given."""
        return self.randomizer.targets.labels

    def set_randomization(self, draws: Mapping[str, np.ndarray]) -> None:
        """The scene at nominal × ``draws`` from now on (``{}``: nominal); the position servos
        keep the drawn gains whenever position control is (re)selected."""
        current, was_position = self._gains, self._gains == self._position_gains
        self.randomizer.apply(draws)
        scale = self.randomizer.arm_gain_scale(draws, len(ARM_JOINTS))
        self._position_gains = _Gains(tuple(ARM_KP * scale), tuple(ARM_KD * np.sqrt(scale)))
        self._gains = None
        if current is not None:
            self._set_gains(self._position_gains if was_position else current)
        self._update_poses()  # camera poses may have moved

    def _body(self, name: str) -> int:
        if name == TABLE:
            return 0  # the table (and the floor below it) are geoms of the world body
        body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)
        if body < 0:
            raise ConfigError(f"unknown body {name!r}; the scene has: {self._body_names()}")
        return int(body)

    def _free_joint(self, name: str) -> Any:
        if name not in self._object_names:
            raise ConfigError(f"unknown object {name!r}; the scene has: {self._object_names}")
        return self.model.joint(f"{name}_joint")

    def _body_names(self) -> str:
        names = [self.model.body(i).name for i in range(1, self.model.nbody)]
        return ", ".join([TABLE, *names])
