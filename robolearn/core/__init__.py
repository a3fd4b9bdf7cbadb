"""The ground floor: what every layer of robolearn may import, and which imports none of them.

* :mod:`robolearn.core.types` — robot specs, states, commands and the package's exceptions;
* :mod:`robolearn.core.geometry` — rotations (quaternions w-x-y-z, axis-angle, matrices), numpy;
* :mod:`robolearn.core.timing` — precise sleeping on a monotonic clock;
* :mod:`robolearn.core.stats` — dataset normalization statistics (numpy);
* :mod:`robolearn.core.chunking` — executing action chunks (plain, temporal ensembling, blending);
* :mod:`robolearn.core.observations` — env observations → the dataset's feature names;
* :mod:`robolearn.core.estop` — the latching e-stop and its key binding;
* :mod:`robolearn.core.terminal` — raw terminal key reading (keyboard e-stop, keyboard teleop).

The layer order of the whole package is in ``ARCHITECTURE.md`` at the repository root and is
checked by ``lint-imports`` (``make lint``).
"""
