"""``python -m robolearn.drivers.dynamixel``: serve a virtual Dynamixel bus (same options as
``python -m robolearn.drivers.dynamixel.virtual_bus``)."""

import sys

from robolearn.drivers.dynamixel.virtual_bus import main

if __name__ == "__main__":
    sys.exit(main())
