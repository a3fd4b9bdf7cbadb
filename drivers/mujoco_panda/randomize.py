"""Domain randomization of the MuJoCo scene: *nominal × draw* written into the model.

The MuJoCo side of :meth:`~robolearn.drivers.panda.SimulatedPanda.set_randomization`. The
nominal copies of every written field are taken once, so nothing drifts over episodes, and an
empty set of draws puts the nominal model back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import mujoco
import numpy as np

from robolearn.core.geometry import quat_from_rotvec, quat_multiply

MODEL_FIELDS = (
    "body_mass",
    "body_inertia",
    "geom_friction",
    "dof_damping",
    "actuator_gainprm",
    "actuator_biasprm",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "cam_pos",
    "cam_quat",
    "light_pos",
    "light_diffuse",
    "geom_rgba",
    "mat_rgba",
)
"""Every model field the randomizer writes; their nominal copies are taken once."""


@dataclass(frozen=True)
class Targets:
    """Which model elements each parameter touches, and their labels."""

    links: tuple[int, ...]
    geoms: tuple[int, ...]
    dofs: tuple[int, ...]
    servos: tuple[int, ...]
    objects: tuple[tuple[int, int], ...]  # (body id, geom id)
    visible: tuple[int, ...]
    labels: dict[str, list[str]]

    @classmethod
    def of(cls, model: mujoco.MjModel, object_names: list[str]) -> Targets:
        """The elements of a Franka task scene."""
        links = [
            b for b in range(model.nbody) if _robot(model.body(b).name) and model.body_mass[b] > 0
        ]
        geoms = [
            g for g in range(model.ngeom) if model.geom_contype[g] or model.geom_conaffinity[g]
        ]
        joints = [j for j in range(model.njnt) if _robot(model.joint(j).name)]
        servos = [a for a in range(model.nu) if _is_position_servo(model, a)]
        objects = [(model.body(n).id, model.geom(n).id) for n in object_names]
        visible = [
            g for g in range(model.ngeom) if model.geom_group[g] <= 2 and model.geom_rgba[g, 3] > 0
        ]
        materials = [model.material(i).name or f"material{i}" for i in range(model.nmat)]
        labels = {
            "links": [model.body(b).name for b in links],
            "geoms": [_geom_label(model, g) for g in geoms],
            "dofs": [model.joint(j).name for j in joints],
            "servos": [model.actuator(a).name for a in servos],
            "objects": list(object_names),
            "cameras": [model.camera(c).name for c in range(model.ncam)],
            "lights": [model.light(i).name or f"light{i}" for i in range(model.nlight)],
            "colours": [_geom_label(model, g) for g in visible] + materials,
        }
        dofs = tuple(int(model.jnt_dofadr[j]) for j in joints)
        return cls(
            tuple(links), tuple(geoms), dofs, tuple(servos), tuple(objects), tuple(visible), labels
        )


def _robot(name: str) -> bool:
    return name.startswith("panda_")


def _is_position_servo(model: mujoco.MjModel, a: int) -> bool:
    kp = model.actuator_gainprm[a, 0]
    return bool(
        model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE
        and kp > 0
        and math.isclose(model.actuator_biasprm[a, 1], -kp)
    )


def _geom_label(model: mujoco.MjModel, g: int) -> str:
    return model.geom(g).name or f"{model.body(model.geom_bodyid[g]).name}/geom{g}"


class MujocoRandomizer:
    """Writes draws (one value per element of each parameter, named as in
    :class:`~robolearn.envs.randomization.DomainRandomizationConfig`) into ``model``."""

    def __init__(self, model: mujoco.MjModel, object_names: list[str]) -> None:
        self.model = model
        self.targets = Targets.of(model, object_names)
        self.nominal = {name: getattr(model, name).copy() for name in MODEL_FIELDS}
        """The model fields as built, before any draw."""
        self._scratch: mujoco.MjData | None = None

    def apply(self, draws: Mapping[str, np.ndarray]) -> None:
        """Nominal, then × ``draws`` (servo gains included: the driver re-reads them)."""
        for name, nominal in self.nominal.items():
            getattr(self.model, name)[:] = nominal
        m, t, nom = self.model, self.targets, self.nominal
        if "link_mass_scale" in draws:
            self._scale_bodies(list(t.links), draws["link_mass_scale"])
        if "friction_scale" in draws:
            ids = list(t.geoms)
            m.geom_friction[ids, 0] = nom["geom_friction"][ids, 0] * draws["friction_scale"]
        if "joint_damping_scale" in draws:
            ids = list(t.dofs)
            m.dof_damping[ids] = nom["dof_damping"][ids] * draws["joint_damping_scale"]
        if "actuator_gain_scale" in draws:
            self._apply_gains(draws["actuator_gain_scale"])
        self._apply_objects(draws)
        self._apply_visuals(draws)
        if {"link_mass_scale", "object_size_scale", "object_mass_scale"} & draws.keys():
            if self._scratch is None:
                self._scratch = mujoco.MjData(m)
            mujoco.mj_setConst(m, self._scratch)  # subtree masses, inverse weights

    def arm_gain_scale(self, draws: Mapping[str, np.ndarray], arm_actuators: int) -> np.ndarray:
        """The stiffness scale of the first ``arm_actuators`` servos (ones when not drawn)."""
        scale = np.ones(arm_actuators)
        if "actuator_gain_scale" in draws:
            for servo, s in zip(self.targets.servos, draws["actuator_gain_scale"], strict=True):
                if servo < arm_actuators:
                    scale[servo] = s
        return scale

    def _scale_bodies(
        self, bodies: list[int], mass_scale: np.ndarray, size_scale: float | np.ndarray = 1.0
    ) -> None:
        m, nom = self.model, self.nominal
        m.body_mass[bodies] = nom["body_mass"][bodies] * mass_scale
        inertia_scale = np.asarray(mass_scale * np.square(size_scale))[:, None]
        m.body_inertia[bodies] = nom["body_inertia"][bodies] * inertia_scale

    def _apply_objects(self, draws: Mapping[str, np.ndarray]) -> None:
        keys = {"object_size_scale", "object_mass_scale"}
        if not (keys & draws.keys()) or not self.targets.objects:
            return
        m, nom = self.model, self.nominal
        n = len(self.targets.objects)
        size = draws.get("object_size_scale", np.ones(n))
        mass = draws.get("object_mass_scale", np.ones(n))
        bodies = [b for b, _ in self.targets.objects]
        geoms = [g for _, g in self.targets.objects]
        self._scale_bodies(bodies, mass, size)
        m.geom_size[geoms] = nom["geom_size"][geoms] * size[:, None]
        m.geom_rbound[geoms] = nom["geom_rbound"][geoms] * size
        m.geom_aabb[geoms, 3:] = nom["geom_aabb"][geoms, 3:] * size[:, None]

    def _apply_visuals(self, draws: Mapping[str, np.ndarray]) -> None:
        m, nom = self.model, self.nominal
        if "camera_pos_offset_m" in draws:
            m.cam_pos[:] = nom["cam_pos"] + draws["camera_pos_offset_m"]
        if "camera_rot_offset_rad" in draws:
            for c, rotvec in enumerate(draws["camera_rot_offset_rad"]):
                m.cam_quat[c] = quat_multiply(nom["cam_quat"][c], quat_from_rotvec(rotvec))
        if "light_pos_offset_m" in draws:
            m.light_pos[:] = nom["light_pos"] + draws["light_pos_offset_m"]
        if "light_diffuse_scale" in draws:
            m.light_diffuse[:] = nom["light_diffuse"] * draws["light_diffuse_scale"][:, None]
        if "rgba_offset" in draws:
            visible, offsets = list(self.targets.visible), draws["rgba_offset"]
            rgb = nom["geom_rgba"][visible, :3] + offsets[: len(visible)]
            m.geom_rgba[visible, :3] = rgb.clip(0.0, 1.0)
            m.mat_rgba[:, :3] = (nom["mat_rgba"][:, :3] + offsets[len(visible) :]).clip(0.0, 1.0)

    def _apply_gains(self, scale: np.ndarray) -> None:
        m, nom, ids = self.model, self.nominal, list(self.targets.servos)
        kp = nom["actuator_gainprm"][ids, 0] * scale
        m.actuator_gainprm[ids, 0] = kp
        m.actuator_biasprm[ids, 1] = -kp
        m.actuator_biasprm[ids, 2] = nom["actuator_biasprm"][ids, 2] * np.sqrt(scale)
