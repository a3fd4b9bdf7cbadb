"""PyBullet simulation of the Franka Panda behind the driver contract and the scene contract.

The same robot, scene, spec and command semantics as
:class:`~robolearn.drivers.mujoco_panda.MujocoPandaDriver`, on PyBullet's physics:

* Every arm mode is one torque law applied before every physics step:
  ``clip(kp (q* - q) - kd dq + tau_ff, ±effort)`` plus gravity compensation at ``q``
  (PyBullet's inverse dynamics at ``(q, 0, 0)``, or
  :class:`~robolearn.drivers.pybullet_panda.gravity.GravityModel` once link masses are
  randomized). ``JOINT_POSITION`` and ``EE_DELTA`` use the position servos' gains
  (:data:`ARM_KP`, :data:`ARM_KD`, as the MuJoCo model's) and no feed-forward;
  ``JOINT_IMPEDANCE`` the commanded gains and ``tau_ff``; ``JOINT_TORQUE`` ``tau_cmd`` alone.
  The commanded part is clipped to the effort limits, the compensation is not, as in MuJoCo.
  The damping acts on the velocity the step will end with (implicit, as MuJoCo's integrator
  does it, with PyBullet's mass matrix every 20 ms): the explicit ``-kd dq`` diverges at 2 ms
  in some poses, even for the position servos' own damping. The MuJoCo model has 0.1 kg·m² of
  rotor inertia (armature) on every arm joint, which PyBullet cannot model; without it, when
  joints 1 and 3 are nearly coaxial, ``dt · eig(M⁻¹ Kd)`` is 2.6 for the servo gains (2 is the
  limit; 6.4 at :data:`~robolearn.drivers.panda.MAX_DAMPING`). With PyBullet's explicit
  ``PD_CONTROL`` servo, which this driver used before, those joints flipped between two angles
  1.7 mrad apart at every physics step, and a hand told to hold still while grasping the cube
  wandered 3.6 cm in 2 s (MuJoCo: 1.7 mm; now the same). Stiffness up to
  :data:`~robolearn.drivers.panda.MAX_STIFFNESS` is stable explicitly (``dt² · eig(M⁻¹ Kp)``
  ≤ 0.2, the limit is 4).
* The fingers are each position-controlled (``POSITION_CONTROL``) to half the commanded width
  with :data:`~robolearn.drivers.panda.GRIPPER_FORCE_N`: within 2 mm of it in 0.3 s.

``RobotState.tau`` is the arm's actuator torque beyond gravity compensation, as MuJoCo's
``actuator_force``: the torque law's clipped output at the last physics step; zero before the
first step after a reset. Units SI; the world frame is the
robot base frame; quaternions are ``(w, x, y, z)`` (PyBullet's ``(x, y, z, w)`` is converted
at the boundary).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pybullet

from robolearn.core.timing import precise_sleep_until
from robolearn.core.types import (
    Command,
    ConfigError,
    ControlMode,
    DriverError,
    FloatArray,
    GripperSpec,
    JointSpec,
    RobotSpec,
    RobotState,
    require_finite,
)
from robolearn.drivers.panda import (
    ARM_JOINTS,
    ARM_KD,
    ARM_KP,
    GRIPPER_FORCE_N,
    HOME_Q,
    MAX_GRIPPER_WIDTH,
    PANDA_MAX_EFFORT,
    PANDA_MAX_VELOCITY,
    CameraRequest,
    SceneConfig,
    SimulatedPanda,
    camera_specs,
    divergence,
    ee_delta_steps,
    gripper_target,
    impedance_targets,
)
from robolearn.drivers.pybullet_panda.gravity import GravityModel
from robolearn.drivers.pybullet_panda.randomize import SERVOS, PybulletRandomizer
from robolearn.drivers.pybullet_panda.render import CameraRig
from robolearn.drivers.pybullet_panda.scene import PandaWorld, urdf_joint_limits

# The arm servos use the shared ARM_KP / ARM_KD of drivers/panda.py: stable with PyBullet's
# explicit PD at 2 ms (``ω dt`` ≤ 0.1 and ``dt kd / M`` ≤ 0.2 for this URDF's inertias).
FINGER_POSITION_GAIN = 0.05
"""PyBullet ``positionGain`` of the finger motors (``POSITION_CONTROL``): the fraction of the
position error removed per physics step, about 40 ms to close on an object."""
FINGER_VELOCITY_GAIN = 1.0
IK_DAMPING = 1e-3
"""Damped-least-squares λ, as :class:`~robolearn.drivers.kinematics.DifferentialIK`."""
IK_ROT_WEIGHT = 0.5
"""Weight of the rotation error against the position error (rad against m), as there."""
IK_MAX_STEP_RAD = 0.2
"""Largest joint change of one IK step, as there."""
IMPLICIT_REFRESH_STEPS = 10
"""Physics steps between refreshes of the mass matrix behind the implicit damping (20 ms)."""
CONTACT_TOL_M = 1e-3
"""Contact points up to this separation count as touching (Bullet keeps near points too)."""


@dataclass(frozen=True)
class _TorqueLaw:
    """What the torque loop applies each physics step: ``clip(kp (q* - q) - kd dq + tau)``."""

    q_target: FloatArray
    kp: FloatArray
    kd: FloatArray
    tau: FloatArray
    servo: bool = False
    """The position servo's law (JOINT_POSITION, EE_DELTA): its gains follow randomization."""

    @property
    def damped(self) -> bool:
        return bool(np.any(self.kd > 0))


class PybulletPandaDriver(SimulatedPanda):
    """A simulated Franka Panda on a table in PyBullet, with optional cameras.

    ``wait(duration_s)`` advances physics by ``duration_s`` rounded to whole physics steps;
    with ``realtime=True`` it also paces itself to the wall clock, like a real arm. Each driver
    has its own PyBullet client (``DIRECT``), created on ``connect()`` and closed on
    ``disconnect()``, so drivers in one process never interfere. Implements the scene contract
    :class:`~robolearn.drivers.panda.SimulatedPanda`.
    """

    backend = "pybullet"

    def __init__(
        self,
        scene: SceneConfig | None = None,
        cameras: Sequence[CameraRequest] = (),
        control_hz: float = 20.0,
        realtime: bool = False,
    ) -> None:
        super().__init__()
        self.scene = scene or SceneConfig()
        self.scene.check_names()
        self._requests = tuple(cameras)
        self._realtime = realtime
        self._spec = self._build_spec(control_hz)
        self._lower = self._spec.limits("lower")
        self._upper = self._spec.limits("upper")
        self._effort = self._spec.limits("max_effort")
        self._world: PandaWorld | None = None
        self._cameras: CameraRig | None = None
        self._steps = 0
        self._wall_offset: float | None = None
        self._law: _TorqueLaw | None = None
        """The torque loop's law (set by ``reset_robot`` and every command)."""
        self._tau = np.zeros(7)
        """The torque loop's output at the last physics step (zero before any step)."""
        self._implicit: tuple[_TorqueLaw, int, FloatArray, FloatArray] | None = None
        """(law, step, (M + dt Kd)⁻¹ M, dt (M + dt Kd)⁻¹) of the implicit damping."""
        self._gripper_target = MAX_GRIPPER_WIDTH
        self._zeros9 = [0.0] * 9
        self._randomizer: PybulletRandomizer | None = None
        self._gravity: GravityModel | None = None
        self._draws: dict[str, FloatArray] = {}
        """The domain-randomization draws in force (``set_randomization``); kept across
        reconnects, applied whenever the world is (re)built."""
        self._kp, self._kd = ARM_KP.copy(), ARM_KD.copy()
        self._finger_gain = FINGER_POSITION_GAIN

    # ----------------------------------------------------------------- spec
    def _build_spec(self, control_hz: float) -> RobotSpec:
        limits = urdf_joint_limits()
        joints = tuple(
            JointSpec(name, *limits[name], PANDA_MAX_VELOCITY[i], PANDA_MAX_EFFORT[i])
            for i, name in enumerate(ARM_JOINTS)
        )
        rate = 1.0 / self.scene.physics_dt
        if control_hz <= 0 or control_hz > rate:
            raise ConfigError(
                f"control_hz={control_hz} is outside (0, {rate:g}] (the physics rate); "
                "choose a lower rate"
            )
        return RobotSpec(
            name="pybullet_panda",
            joints=joints,
            control_modes=frozenset(ControlMode),
            control_hz=control_hz,
            max_control_hz=rate,
            cameras=camera_specs(self.scene, self._requests),
            gripper=GripperSpec(min_width=0.0, max_width=0.08, max_force=40.0),
        )

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    @property
    def realtime(self) -> bool:
        return self._realtime

    @property
    def physics_dt(self) -> float:
        return self.scene.physics_dt

    # ------------------------------------------------------- connect/reset
    def _connect(self) -> None:
        world = PandaWorld(self.scene)
        try:
            self._cameras = CameraRig(world, self._requests)
        except BaseException:
            world.close()
            raise
        self._world = world
        self._gravity = GravityModel(world)
        self._randomizer = PybulletRandomizer(world, self._gravity)
        if self._draws:
            self._apply_randomization()
        self.reset_robot(HOME_Q, gripper_width=MAX_GRIPPER_WIDTH)

    def _disconnect(self) -> None:
        self._cameras = None
        self._randomizer = None
        self._gravity = None
        if self._world is not None:
            self._world.close()
            self._world = None

    def reset_robot(self, q: FloatArray, gripper_width: float = MAX_GRIPPER_WIDTH) -> None:
        """Reset the simulation: time 0, the arm at ``q`` at rest under position control, the
        gripper at ``gripper_width``, objects and markers back where the scene put them."""
        w = self._sim()
        c, idx = w.client, w.indices
        w.restore()
        q = np.asarray(q, dtype=np.float64)
        for joint, value in zip(idx.arm, q, strict=True):
            c.resetJointState(w.robot, joint, float(value), 0.0)
        for joint in idx.fingers:
            c.resetJointState(w.robot, joint, gripper_width / 2.0, 0.0)
        self._implicit = None
        self._apply_position(q)
        self._set_gripper(float(gripper_width))
        self._tau = np.zeros(7)
        self._steps = 0
        self._wall_offset = None
        c.performCollisionDetection()

    # ---------------------------------------------------------------- read
    def _read(self) -> RobotState:
        state = self.read_proprio()
        assert self._cameras is not None
        state.images, state.depths = self._cameras.render_all()
        return state

    def read_proprio(self) -> RobotState:
        """The robot's state without rendering any camera (cheap; simulation only)."""
        w = self._sim()
        states = w.client.getJointStates(w.robot, w.indices.movable)
        q = np.array([s[0] for s in states[:7]])
        dq = np.array([s[1] for s in states[:7]])
        pos, quat = self.ee_pose()
        return RobotState(
            timestamp=self.now(),
            q=q,
            dq=dq,
            tau=self._tau.copy(),
            ee_pos=pos,
            ee_quat=quat,
            gripper_width=float(states[7][0] + states[8][0]),
        )

    def ee_pose(self) -> tuple[FloatArray, FloatArray]:
        """Position (3,) and quaternion (4,) of ``panda_grasptarget`` in the world frame."""
        w = self._sim()
        link = w.client.getLinkState(w.robot, w.indices.ee_link, computeForwardKinematics=True)
        return np.array(link[4], dtype=np.float64), _wxyz(link[5])

    def joint_positions(self) -> FloatArray:
        """Arm joint positions (7,) in rad, without rendering cameras."""
        w = self._sim()
        return np.array([s[0] for s in w.client.getJointStates(w.robot, w.indices.arm)])

    def gripper_width(self) -> float:
        """Current finger opening in m (the sum of the two finger joints)."""
        w = self._sim()
        states = w.client.getJointStates(w.robot, w.indices.fingers)
        return float(states[0][0] + states[1][0])

    # ------------------------------------------------------------- command
    def _command(self, cmd: Command) -> Command:
        # The whole command is validated before any of it reaches the simulation: a rejected
        # arm command must not leave its gripper width applied, nor a bad width its arm target.
        gripper = gripper_target(cmd.gripper_width, self._gripper_target)
        applied = self._apply_arm(cmd, gripper)
        self._set_gripper(gripper)
        return applied

    def _apply_arm(self, cmd: Command, gripper: float) -> Command:
        if cmd.mode is ControlMode.JOINT_POSITION:
            q = self._apply_position(require_finite("joint_position", cmd.joint_position, (7,)))
            return Command(cmd.mode, joint_position=q, gripper_width=gripper)
        if cmd.mode is ControlMode.JOINT_IMPEDANCE:
            return self._apply_impedance(cmd, gripper)
        if cmd.mode is ControlMode.JOINT_TORQUE:
            tau = require_finite("joint_torque", cmd.joint_torque, (7,))
            tau = np.clip(tau, -self._effort, self._effort)
            zeros = np.zeros(7)
            self._law = _TorqueLaw(zeros, zeros, zeros, tau)
            return Command(cmd.mode, joint_torque=tau, gripper_width=gripper)
        return self._apply_ee_delta(cmd, gripper)

    def _apply_position(self, q: FloatArray) -> FloatArray:
        q = q.clip(self._lower, self._upper)
        self._law = _TorqueLaw(q, self._kp, self._kd, np.zeros(7), servo=True)
        return q

    def _apply_impedance(self, cmd: Command, gripper: float) -> Command:
        applied = impedance_targets(cmd, self._lower, self._upper, self._effort)
        q, kp, kd, tau_ff = (
            applied.joint_position,
            applied.stiffness,
            applied.damping,
            applied.joint_torque,
        )
        assert q is not None and kp is not None and kd is not None and tau_ff is not None
        self._law = _TorqueLaw(q, kp, kd, tau_ff)
        return applied.with_(gripper_width=gripper)

    def _apply_ee_delta(self, cmd: Command, gripper: float) -> Command:
        dpos, drot = ee_delta_steps(cmd)
        # One damped-least-squares step per command towards (pose + delta), from the measured
        # joints: its error is the delta itself. The next command starts from the measured
        # pose, so the residual of the linearised step is corrected on the next tick.
        q = self._ik_step(dpos, drot)
        q = self._apply_position(q)
        return Command(
            cmd.mode, ee_delta_pos=dpos, ee_delta_rot=drot, joint_position=q, gripper_width=gripper
        )

    def _ik_step(self, e_pos: FloatArray, e_rot: FloatArray) -> FloatArray:
        """One DLS step of the arm joints towards the pose error (m, rad; world frame), with
        the joints a step would push past a limit locked, like ``DifferentialIK``."""
        w = self._sim()
        states = w.client.getJointStates(w.robot, w.indices.movable)
        q9 = [s[0] for s in states]
        lin, ang = w.client.calculateJacobian(
            w.robot, w.indices.ee_link, [0.0, 0.0, 0.0], q9, self._zeros9, self._zeros9
        )
        jac = np.vstack([np.asarray(lin)[:, :7], IK_ROT_WEIGHT * np.asarray(ang)[:, :7]])
        err = np.concatenate([e_pos, IK_ROT_WEIGHT * e_rot])
        q = np.array(q9[:7])
        dq = _dls(jac, err)
        pushed = ((q <= self._lower) & (dq < 0)) | ((q >= self._upper) & (dq > 0))
        while pushed.any():
            jac[:, pushed] = 0.0
            dq = _dls(jac, err)
            pushed = ((q <= self._lower) & (dq < 0)) | ((q >= self._upper) & (dq > 0))
        scale = max(1.0, float(np.abs(dq).max()) / IK_MAX_STEP_RAD)
        return np.asarray((q + dq / scale).clip(self._lower, self._upper))

    def _set_gripper(self, width: float) -> None:
        w = self._sim()
        self._gripper_target = width
        w.client.setJointMotorControlArray(
            w.robot,
            w.indices.fingers,
            pybullet.POSITION_CONTROL,
            targetPositions=[width / 2.0] * 2,
            targetVelocities=[0.0] * 2,
            forces=[GRIPPER_FORCE_N] * 2,
            positionGains=[self._finger_gain] * 2,
            velocityGains=[FINGER_VELOCITY_GAIN] * 2,
        )

    # --------------------------------------------------------------- clock
    def now(self) -> float:
        """Simulated seconds since the last reset (physics steps × ``physics_dt``)."""
        return self._steps * self.scene.physics_dt

    def wait(self, duration_s: float) -> float:
        """Advance physics by ``duration_s`` rounded to whole physics steps (at least one)."""
        if duration_s <= 0:
            return self.now()
        return self._advance(max(1, round(duration_s / self.scene.physics_dt)))

    def wait_until(self, t: float) -> float:
        """Advance physics to simulated time ``t`` (rounded to whole physics steps; none if
        ``t`` has passed). With ``realtime=True`` both also pace to the wall clock."""
        return self._advance(round((t - self.now()) / self.scene.physics_dt))

    def _advance(self, nstep: int) -> float:
        if nstep > 0:
            w = self._sim()
            step = w.client.stepSimulation
            law = self._law
            assert law is not None  # reset_robot sets the position servo's law
            for _ in range(nstep):
                self._apply_torque_law(w, law)
                step()
            self._steps += nstep
        if self._realtime:
            self._pace_to_wall_clock()
        return self.now()

    def _apply_torque_law(self, w: PandaWorld, law: _TorqueLaw) -> None:
        """Set this physics step's arm torques: the law's clipped output plus gravity."""
        c = w.client
        states = c.getJointStates(w.robot, w.indices.movable)
        q9 = [s[0] for s in states]
        assert self._gravity is not None
        gravity = self._gravity.torques(q9)
        q = np.array(q9[:7])
        dq = np.array([s[1] for s in states[:7]])
        tau = law.kp * (law.q_target - q) + law.tau
        if law.damped:
            tau -= law.kd * self._implicit_velocity(w, q9, dq, tau, law)
        self._tau = np.clip(tau, -self._effort, self._effort)
        total = self._tau + gravity
        c.setJointMotorControlArray(
            w.robot, w.indices.arm, pybullet.TORQUE_CONTROL, forces=total.tolist()
        )

    def _implicit_velocity(
        self, w: PandaWorld, q9: list[float], dq: FloatArray, tau: FloatArray, law: _TorqueLaw
    ) -> FloatArray:
        """The arm velocity (rad/s) after this step under ``tau`` and the damping ``kd``
        itself: ``(M + dt Kd)⁻¹ (M dq + dt tau)`` (gravity is compensated; Coriolis terms,
        the fingers and randomized link masses are left out of ``M``). Damping this velocity
        instead of the measured one is MuJoCo's implicit damping: stable for any ``kd``, where
        the explicit ``-kd dq`` diverges once ``dt · eig(M⁻¹ Kd)`` passes 2 (up to 6.4 at
        :data:`~robolearn.drivers.panda.MAX_DAMPING` in some poses of this URDF). The two
        matrices are refreshed every :data:`IMPLICIT_REFRESH_STEPS` steps."""
        cached = self._implicit
        if (
            cached is None
            or cached[0] is not law
            or self._steps - cached[1] >= IMPLICIT_REFRESH_STEPS
        ):
            mass = np.asarray(w.client.calculateMassMatrix(w.robot, q9))[:7, :7]
            dt = self.scene.physics_dt
            lhs = mass.copy()
            lhs.flat[::8] += dt * law.kd
            inverse = np.linalg.inv(lhs)
            cached = (law, self._steps, inverse @ mass, dt * inverse)
            self._implicit = cached
        return np.asarray(cached[2] @ dq + cached[3] @ tau)

    def _pace_to_wall_clock(self) -> None:
        now = time.perf_counter()
        if self._wall_offset is None:
            self._wall_offset = now - self.now()
        precise_sleep_until(self._wall_offset + self.now())

    # ------------------------------------------------- simulation accessors
    def object_pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """World position (3,) and quaternion (4,) of a scene object or marker."""
        w = self._sim()
        pos, quat = w.client.getBasePositionAndOrientation(self._object_or_marker(name))
        return np.array(pos, dtype=np.float64), _wxyz(quat)

    def object_velocity(self, name: str) -> FloatArray:
        """Linear (3,) then angular (3,) velocity of a free scene object, world frame."""
        w = self._sim()
        linear, angular = w.client.getBaseVelocity(self._object(name))
        return np.array([*linear, *angular], dtype=np.float64)

    def set_object_pose(self, name: str, pos: FloatArray, quat: FloatArray) -> None:
        """Place a free scene object at rest (``quat`` is ``(w, x, y, z)``)."""
        w = self._sim()
        body = self._object(name)
        w.client.resetBasePositionAndOrientation(body, _vec(pos), _xyzw(quat))
        w.client.resetBaseVelocity(body, [0.0] * 3, [0.0] * 3)
        w.client.performCollisionDetection()  # in_contact() sees the new pose at once

    def set_object_velocity(self, name: str, linear: FloatArray, angular: FloatArray) -> None:
        """Set a free object's world-frame linear (m/s) and angular (rad/s) velocity."""
        w = self._sim()
        w.client.resetBaseVelocity(self._object(name), _vec(linear), _vec(angular))

    def set_marker(self, name: str, pos: FloatArray) -> None:
        """Move a visual marker (e.g. a goal)."""
        w = self._sim()
        if name not in w.markers:
            raise ConfigError(f"unknown marker {name!r}; the scene has: {list(w.markers)}")
        w.client.resetBasePositionAndOrientation(w.markers[name], _vec(pos), [0.0, 0.0, 0.0, 1.0])

    def in_contact(self, body_a: str, body_b: str) -> bool:
        """Whether two bodies (objects, ``table``, Panda links) touch now."""
        w = self._sim()
        parts_b = w.contact_bodies(body_b)
        for id_a, link_a in w.contact_bodies(body_a):
            for id_b, link_b in parts_b:
                points = w.client.getContactPoints(
                    bodyA=id_a,
                    bodyB=id_b,
                    linkIndexA=-2 if link_a is None else link_a,
                    linkIndexB=-2 if link_b is None else link_b,
                )
                if any(p[8] <= CONTACT_TOL_M for p in points):
                    return True
        return False

    def camera_pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """World pose of a scene camera: position (3,), quaternion (4,); looks along -z."""
        self._sim()
        assert self._cameras is not None
        return self._cameras.pose(name)

    def render_frame(self, camera: str, height: int, width: int) -> np.ndarray:
        """One RGB frame (H, W, 3) uint8 of a scene camera at any size (for ``env.render``)."""
        self._sim()
        assert self._cameras is not None
        return self._cameras.render(camera, height, width)[0]

    def physics_fault(self) -> str | None:
        """A NaN or runaway joint or object speed, or an object thrown out of the scene."""
        w = self._sim()
        c = w.client
        speeds = [s[1] for s in c.getJointStates(w.robot, w.indices.movable)]
        linear, angular, positions = [], [], []
        for body in w.objects.values():
            lin, ang = c.getBaseVelocity(body)
            linear.append(lin)
            angular.append(ang)
            positions.append(c.getBasePositionAndOrientation(body)[0])
        return divergence(np.array(speeds), *(np.array(x) for x in (linear, angular, positions)))

    def randomization_targets(self) -> dict[str, list[str]]:
        """Element names per randomized kind (links, geoms, dofs, servos, objects, cameras,
        lights, colours), in the order draws are given. Needs a connected driver."""
        self._sim()
        assert self._randomizer is not None and self._cameras is not None
        return self._randomizer.labels(self._cameras.names, ["light"])

    def set_randomization(self, draws: Mapping[str, np.ndarray]) -> None:
        """The scene at nominal × ``draws`` from the next reset on (``{}``: nominal).

        Link masses and inertias, friction, joint damping, object size and mass, colours,
        camera poses and the light as on MuJoCo; a servo gain draw ``s`` scales an arm servo's
        stiffness by ``s`` and its damping by ``√s``, as there, and the finger motors'
        ``positionGain`` by ``√s`` (the bandwidth of a servo of stiffness × ``s``). A new
        object size rebuilds the objects at the start of the scene (the next reset places
        them). Keys that are not scene parameters (``action_latency_ticks``) are ignored."""
        self._draws = {k: np.asarray(v, dtype=np.float64) for k, v in draws.items()}
        if self._world is not None:
            self._apply_randomization()

    def _apply_randomization(self) -> None:
        assert self._randomizer is not None and self._cameras is not None
        d = self._draws
        self._randomizer.apply(d)
        rig = self._cameras
        rig.set_offsets(d.get("camera_pos_offset_m"), d.get("camera_rot_offset_rad"))
        light = d.get("light_pos_offset_m")
        diffuse = d.get("light_diffuse_scale")
        rig.set_light(None if light is None else light[0], None if diffuse is None else diffuse[0])
        scale = d.get("actuator_gain_scale", np.ones(len(SERVOS)))
        if scale.shape != (len(SERVOS),):
            raise ConfigError(f"actuator_gain_scale needs {len(SERVOS)} values, got {scale.shape}")
        self._kp, self._kd = ARM_KP * scale[:7], ARM_KD * np.sqrt(scale[:7])
        self._finger_gain = FINGER_POSITION_GAIN * math.sqrt(float(scale[7]))
        if self._law is not None and self._law.servo:
            self._apply_position(self._law.q_target)  # the servo law with the new gains
        self._set_gripper(self._gripper_target)

    def _sim(self) -> PandaWorld:
        if self._world is None:
            raise DriverError(f"{self._spec.name} is not connected: call connect() first")
        return self._world

    def _object(self, name: str) -> int:
        objects = self._sim().objects
        if name not in objects:
            raise ConfigError(f"unknown object {name!r}; the scene has: {list(objects)}")
        return objects[name]

    def _object_or_marker(self, name: str) -> int:
        w = self._sim()
        if name in w.objects:
            return w.objects[name]
        if name in w.markers:
            return w.markers[name]
        known = [*w.objects, *w.markers]
        raise ConfigError(f"unknown object or marker {name!r}; the scene has: {known}")


def _dls(jac: FloatArray, err: FloatArray) -> FloatArray:
    """Damped least squares ``Jᵀ (J Jᵀ + λI)⁻¹ e``."""
    jjt = jac @ jac.T
    jjt.flat[:: jjt.shape[0] + 1] += IK_DAMPING
    return np.asarray(jac.T @ np.linalg.solve(jjt, err))


def _wxyz(xyzw: Sequence[float]) -> FloatArray:
    """PyBullet's ``(x, y, z, w)`` quaternion as a unit ``(w, x, y, z)``."""
    quat = np.array([xyzw[3], xyzw[0], xyzw[1], xyzw[2]], dtype=np.float64)
    return quat / math.sqrt(float(quat @ quat))


def _xyzw(wxyz: FloatArray) -> list[float]:
    w, x, y, z = (float(v) for v in wxyz)
    return [x, y, z, w]


def _vec(values: FloatArray) -> list[float]:
    return [float(v) for v in values]
