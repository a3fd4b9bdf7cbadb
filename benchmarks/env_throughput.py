"""Env throughput on both simulator backends: state-mode steps/s against a bare physics loop,
image-mode frames/s.

The bare loop replays exactly the physics the env ran: the same initial states and the same
actuator commands per control tick, then the same number of substeps — ``mj_step(model,
data, nstep)`` for MuJoCo; for PyBullet the finger targets per tick and, per physics step, the
arm torques the driver applied (its torque law plus gravity compensation,
``setJointMotorControlArray(TORQUE_CONTROL)``) before each of the ``nstep`` calls of
``stepSimulation``.
Env and bare runs alternate for several rounds and medians are compared (ratios, because this
machine is noisy). Writes ``benchmarks/results/env_throughput.json`` and the README block
``bench:env_throughput``.

    python -m benchmarks.env_throughput [--episodes 6] [--rounds 5] [--image-steps 30]
"""

from __future__ import annotations

from robolearn.core import _gl  # noqa: F401  (picks MUJOCO_GL=egl before mujoco is imported)

# isort: split
import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import pybullet

from benchmarks._report import write_results
from robolearn import envs
from robolearn.drivers.panda import GRIPPER_FORCE_N
from robolearn.drivers.pybullet_panda.driver import FINGER_VELOCITY_GAIN, PybulletPandaDriver
from robolearn.envs.base import FrankaTaskEnv


@dataclass
class Recording:
    seeds: list[int]
    actions: list[list[np.ndarray]]
    states: list[np.ndarray]  # initial full physics state per episode
    ctrls: list[list[np.ndarray]]  # actuator controls per tick


def _unwrapped(env: Any) -> FrankaTaskEnv:
    u = env.unwrapped
    assert isinstance(u, FrankaTaskEnv)
    return u


def record(env_id: str, control_mode: str, episodes: int) -> Recording:
    """Run the scripted expert once (untimed) and keep actions, controls and initial states."""
    env = envs.make(env_id, control_mode=control_mode)
    expert, u = envs.make_expert(env), _unwrapped(env)
    max_steps = u.task.max_episode_steps
    rec = Recording([], [], [], [])
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        expert.reset(ep)
        state = np.empty(mujoco.mj_stateSize(u.driver.model, spec))
        mujoco.mj_getState(u.driver.model, u.driver.data, state, spec)
        acts, ctrls = [], []
        for _ in range(max_steps):
            action = expert.act(obs)
            obs, *_ = env.step(action)
            acts.append(action)
            ctrls.append(u.driver.data.ctrl.copy())
        rec.seeds.append(ep)
        rec.actions.append(acts)
        rec.states.append(state)
        rec.ctrls.append(ctrls)
    env.close()
    return rec


def time_env(env: Any, rec: Recording | BulletRecording) -> float:
    """Steps/s of ``env.step`` replaying the recorded actions (resets not timed)."""
    steps, elapsed = 0, 0.0
    for seed, acts in zip(rec.seeds, rec.actions, strict=True):
        env.reset(seed=seed)
        t0 = time.perf_counter()
        for action in acts:
            env.step(action)
        elapsed += time.perf_counter() - t0
        steps += len(acts)
    return steps / elapsed


def time_bare(model: mujoco.MjModel, rec: Recording, nstep: int) -> float:
    """Steps/s of a bare loop: set the recorded controls, ``mj_step`` nstep substeps."""
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    steps, elapsed = 0, 0.0
    for state, ctrls in zip(rec.states, rec.ctrls, strict=True):
        mujoco.mj_setState(model, data, state, spec)
        t0 = time.perf_counter()
        for ctrl in ctrls:
            data.ctrl[:] = ctrl
            mujoco.mj_step(model, data, nstep)
        elapsed += time.perf_counter() - t0
        steps += len(ctrls)
    return steps / elapsed


def state_mode(env_id: str, control_mode: str, episodes: int, rounds: int) -> dict[str, Any]:
    rec = record(env_id, control_mode, episodes)
    env = envs.make(env_id, control_mode=control_mode)
    u = _unwrapped(env)
    model = u.driver.model
    nstep = round(1.0 / u.control_hz / model.opt.timestep)
    env_rates, bare_rates = [], []
    for _ in range(rounds):
        env_rates.append(time_env(env, rec))
        bare_rates.append(time_bare(model, rec, nstep))
    env.close()
    return _row(env_id, control_mode, "mujoco", nstep, env_rates, bare_rates, rec.actions)


@dataclass
class BulletRecording:
    seeds: list[int]
    actions: list[list[np.ndarray]]
    states: list[int]  # pybullet saveState ids of each episode's start
    motors: list[list[tuple[list[list[float]], list[float]]]]
    """Per control tick: the arm torques of each physics step (law + gravity), finger target."""


def _bullet(env: Any) -> PybulletPandaDriver:
    driver = _unwrapped(env).driver
    assert isinstance(driver, PybulletPandaDriver)
    return driver


def bullet_record(env: Any, control_mode: str, episodes: int) -> BulletRecording:
    """The scripted expert once (untimed) in ``env``: actions, the arm torques the driver
    applied at every physics step, finger targets, start states."""
    expert, d = envs.make_expert(env), _bullet(env)
    client = d._sim().client
    applied: list[list[float]] = []
    law_step = d._apply_torque_law

    def recording_law(world: Any, law: Any) -> None:
        q9 = [s[0] for s in client.getJointStates(world.robot, world.indices.movable)]
        law_step(world, law)
        assert d._gravity is not None
        applied.append((d._tau + d._gravity.torques(q9)).tolist())

    d._apply_torque_law = recording_law  # type: ignore[method-assign,assignment]
    rec = BulletRecording([], [], [], [])
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=ep)
            expert.reset(ep)
            rec.states.append(client.saveState())
            acts, motors = [], []
            for _ in range(_unwrapped(env).task.max_episode_steps):
                action = expert.act(obs)
                applied.clear()
                obs, *_ = env.step(action)
                acts.append(action)
                motors.append((list(applied), [d._gripper_target / 2.0] * 2))
            rec.seeds.append(ep)
            rec.actions.append(acts)
            rec.motors.append(motors)
    finally:
        del d._apply_torque_law  # back to the class's method
    return rec


def time_bare_bullet(d: PybulletPandaDriver, rec: BulletRecording) -> float:
    """Steps/s of a bare loop: restore the start state, then per tick set the recorded finger
    target, and per physics step the recorded arm torques and ``stepSimulation``."""
    world = d._sim()
    c, robot, arm, fingers = world.client, world.robot, world.indices.arm, world.indices.fingers
    gain = [d._finger_gain] * 2
    torque = pybullet.TORQUE_CONTROL
    steps, elapsed = 0, 0.0
    for state, motors in zip(rec.states, rec.motors, strict=True):
        c.restoreState(state)
        t0 = time.perf_counter()
        for torques, finger in motors:
            c.setJointMotorControlArray(
                robot,
                fingers,
                pybullet.POSITION_CONTROL,
                targetPositions=finger,
                targetVelocities=[0.0] * 2,
                forces=[GRIPPER_FORCE_N] * 2,
                positionGains=gain,
                velocityGains=[FINGER_VELOCITY_GAIN] * 2,
            )
            for tau in torques:
                c.setJointMotorControlArray(robot, arm, torque, forces=tau)
                c.stepSimulation()
        elapsed += time.perf_counter() - t0
        steps += len(motors)
    return steps / elapsed


def bullet_state_mode(env_id: str, control_mode: str, episodes: int, rounds: int) -> dict[str, Any]:
    env = envs.make(env_id, control_mode=control_mode, backend="pybullet")
    rec = bullet_record(env, control_mode, episodes)
    d = _bullet(env)
    nstep = round(1.0 / _unwrapped(env).control_hz / d.physics_dt)
    env_rates, bare_rates = [], []
    for _ in range(rounds):
        env_rates.append(time_env(env, rec))
        bare_rates.append(time_bare_bullet(d, rec))
    env.close()
    return _row(env_id, control_mode, "pybullet", nstep, env_rates, bare_rates, rec.actions)


def _row(
    env_id: str,
    control_mode: str,
    backend: str,
    nstep: int,
    env_rates: list[float],
    bare_rates: list[float],
    actions: list[list[np.ndarray]],
) -> dict[str, Any]:
    ratios = [e / b for e, b in zip(env_rates, bare_rates, strict=True)]
    return {
        "env_id": env_id,
        "backend": backend,
        "control_mode": control_mode,
        "substeps_per_step": nstep,
        "env_steps_per_s": statistics.median(env_rates),
        "bare_steps_per_s": statistics.median(bare_rates),
        "ratio": statistics.median(ratios),
        "steps_per_round": sum(len(a) for a in actions),
    }


def image_mode(
    env_id: str, size: tuple[int, int], steps: int, backend: str = "mujoco"
) -> dict[str, Any]:
    cams = ("front", "wrist")
    env = envs.make(env_id, obs_mode="image", image_size=size, cameras=cams, backend=backend)
    expert = envs.make_expert(env)
    obs, _ = env.reset(seed=0)
    expert.reset(0)
    env.step(expert.act(obs))  # warm up the GL context
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(expert.act(obs))
    elapsed = time.perf_counter() - t0
    env.close()
    return {
        "env_id": env_id,
        "backend": backend,
        "image_size": list(size),
        "cameras": len(cams),
        "env_steps_per_s": steps / elapsed,
        "frames_per_s": steps * len(cams) / elapsed,
    }


def markdown(state: list[dict[str, Any]], image: list[dict[str, Any]], cmd: str) -> str:
    lines = [
        f"Measured with `{cmd}` on {_machine_line()}.",
        "",
        "| task | backend | control mode | env steps/s | bare physics steps/s | "
        "ratio (target ≥ 0.7) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in state:
        verdict = "met" if r["ratio"] >= 0.7 else "**not met**"
        lines.append(
            f"| {r['env_id']} | {r['backend']} | {r['control_mode']} | "
            f"{r['env_steps_per_s']:.0f} | {r['bare_steps_per_s']:.0f} | "
            f"{r['ratio']:.2f} ({verdict}) |"
        )
    lines += [
        "",
        "| image mode (front + wrist RGB) | backend | env steps/s | camera frames/s |",
        "|---|---|---:|---:|",
    ]
    for r in image:
        h, w = r["image_size"]
        lines.append(
            f"| {h}×{w} | {r['backend']} | {r['env_steps_per_s']:.1f} | {r['frames_per_s']:.1f} |"
        )
    return "\n".join(lines)


def _machine_line() -> str:
    import os
    import platform

    gl = os.environ.get("MUJOCO_GL")
    return f"{os.cpu_count()} CPU cores ({platform.machine()}), rendering with MUJOCO_GL={gl}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image-steps", type=int, default=30)
    parser.add_argument("--no-readme", action="store_true", help="only write the JSON file")
    args = parser.parse_args()
    state = [
        measure(env_id, mode, args.episodes, args.rounds)
        for env_id in ("robolearn/FrankaReach-v0", "robolearn/FrankaLift-v0")
        for mode in ("ee_delta", "joint_position")
        for measure in (state_mode, bullet_state_mode)
    ]
    for r in state:
        print(
            f"{r['env_id']:28s} {r['backend']:9s} {r['control_mode']:15s} "
            f"env {r['env_steps_per_s']:7.0f}/s bare {r['bare_steps_per_s']:7.0f}/s "
            f"ratio {r['ratio']:.2f}"
        )
    image = [
        image_mode("robolearn/FrankaLift-v0", s, args.image_steps, backend)
        for backend in ("mujoco", "pybullet")
        for s in ((128, 128), (480, 640))
    ]
    for r in image:
        print(
            f"image {r['image_size']}: {r['env_steps_per_s']:.1f} steps/s, "
            f"{r['frames_per_s']:.1f} frames/s"
        )
    cmd = (
        "make bench"
        if args.episodes == 6 and args.rounds == 5
        else "python -m benchmarks.env_throughput"
    )
    out = write_results(
        "env_throughput",
        {"state_mode": state, "image_mode": image},
        markdown(state, image, cmd),
        readme=not args.no_readme,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
