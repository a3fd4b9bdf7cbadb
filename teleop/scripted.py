"""A scripted expert as a teleop device, so recorders treat it exactly like a human device.

The expert (:mod:`robolearn.envs.experts`: ``reset(seed)``, ``act(obs) -> action``) acts in its
task's
action space; :func:`robolearn.teleop.actions.from_action` turns that action back into a
:class:`~robolearn.teleop.base.TeleopCommand`, and :func:`robolearn.teleop.actions.to_action` turns
the command
into the same action again (exactly, inside the action space). The expert never sends
session events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from robolearn.core.types import ConfigError
from robolearn.teleop.actions import ActionScale, from_action
from robolearn.teleop.base import Obs, TeleopCommand, TeleopDevice


class Expert(Protocol):
    """What a scripted expert offers (:class:`robolearn.envs.experts.ScriptedExpert`)."""

    def reset(self, seed: int | None = None) -> None:
        """Start an episode."""
        ...

    def act(self, obs: Obs) -> np.ndarray:
        """The action for observation ``obs``."""
        ...


class ScriptedTeleop(TeleopDevice):
    """``expert`` acting in ``scale.control_mode`` as a device.

    :meth:`read` needs the observation; when called without one it asks ``observe`` (for a
    device made by :meth:`from_env`, the env's state observation).
    """

    name = "scripted"

    def __init__(
        self, expert: Expert, scale: ActionScale, observe: Callable[[], Obs] | None = None
    ) -> None:
        super().__init__()
        self.expert, self.scale = expert, scale
        self._observe = observe
        self.produces = "joint" if scale.control_mode == "joint_position" else "ee_delta"

    @classmethod
    def from_env(cls, env: Any) -> ScriptedTeleop:
        """The scripted expert of ``env``'s task, in ``env``'s control mode and scale."""
        from robolearn.envs.experts import make_expert  # envs pulls in MuJoCo: only when asked

        return cls(make_expert(env), ActionScale.of_env(env), env.unwrapped.state_observation)

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: the expert starts its script over."""
        super().reset(seed)
        self.expert.reset(seed)

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read(self, obs: Obs | None) -> TeleopCommand:
        if obs is None:
            if self._observe is None:
                raise ConfigError("a scripted device needs the observation: read(obs)")
            obs = self._observe()
        return from_action(self.expert.act(obs), self.scale)
