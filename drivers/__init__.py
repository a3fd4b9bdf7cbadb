"""Robot drivers behind one contract (:class:`drivers.base.Driver`)."""

from robolearn import _gl  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
