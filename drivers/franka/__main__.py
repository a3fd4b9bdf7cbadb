"""``python -m robolearn.drivers.franka``: serve a simulated Franka FR3 (franky-sim) until Ctrl-C.

Prints the loopback address to give :class:`robolearn.drivers.franka.FrankaConfig` as ``host`` (with
``realtime="ignore"``); ``--help`` lists the options.
"""

import sys

from robolearn.drivers.franka.sim_server import main

sys.exit(main())
