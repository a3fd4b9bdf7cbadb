"""Driver-contract registry entries for Dynamixel arms on the virtual servo bus (see ``conftest.py``)."""

from __future__ import annotations

from typing import Any

FACTORIES: list[Any] = []
"""``pytest.param(factory, id=...)`` entries appended to ``conftest.DRIVER_FACTORIES``."""
