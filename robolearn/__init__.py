"""robolearn: robot learning on simulated and real arms behind one driver contract."""

from robolearn.core import _gl  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)

__version__ = "0.1.0"
