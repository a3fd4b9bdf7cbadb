"""Pick MuJoCo's offscreen GL backend before mujoco is first imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. On Linux robolearn defaults it to ``egl``
(headless, works on a CPU through Mesa and on NVIDIA GPUs); a value the user set wins.
"""

import os
import sys

MUJOCO_IMPORTED_FIRST = "mujoco" in sys.modules and "MUJOCO_GL" not in os.environ
"""True when mujoco was imported before robolearn with MUJOCO_GL unset: too late to choose EGL."""

if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")
