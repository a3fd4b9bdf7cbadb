"""Robot drivers behind one contract (:class:`robolearn.drivers.base.Driver`)."""

from robolearn.core import _gl  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
