"""Pick MuJoCo's offscreen GL backend before mujoco is first imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. On Linux robolearn defaults it to ``egl``
(headless, works on a CPU through Mesa and on NVIDIA GPUs); a value the user set wins.
"""

import os
import sys

if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")
