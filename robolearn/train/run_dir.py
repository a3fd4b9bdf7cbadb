"""The run folder ``--out`` of a training run: refuse to clobber, honour --resume / --overwrite.

The trainers (:func:`robolearn.train.train`, ``robolearn train --algo`` and
``robolearn pretrain``) prepare their folder here, so that they agree on when a folder
already holds a run and what to say.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from robolearn.core.types import ConfigError

CHECKPOINTS = "checkpoints"
"""The sub-folder whose presence marks a folder as holding a training run."""
CONFIG_FILE = "train_config.json"
"""The run's :class:`TrainConfig`, written at every start (and resume)."""


class RunConfig(Protocol):
    """What a run folder needs of a training config (a dataclass, saved as JSON)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    out: Path
    resume: bool
    overwrite: bool


def prepare_run_dir(
    cfg: RunConfig,
    *,
    resume_from: str = CHECKPOINTS,
    resume_from_is_dir: bool = True,
    check_resume: Callable[[Path], None] | None = None,
    config_file: str = CONFIG_FILE,
) -> Path:
    """Make ``cfg.out`` ready for a run, write its config (``config_file``, by default
    ``train_config.json``) and return it.

    A folder that already holds a run (a ``checkpoints/`` sub-folder) is a
    :class:`ConfigError` unless ``cfg.resume`` or ``cfg.overwrite``; ``overwrite`` deletes
    it. ``--resume`` needs ``resume_from`` (relative to the run folder: a folder when
    ``resume_from_is_dir``, anything otherwise) and then calls ``check_resume(run)``, which
    raises where the saved run cannot be continued with ``cfg``.
    """
    run = Path(cfg.out)
    _refuse_existing_run(cfg, run)
    if cfg.overwrite and run.exists():
        shutil.rmtree(run)
    if cfg.resume:
        _check_resumable(run, resume_from, resume_from_is_dir)
        if check_resume is not None:
            check_resume(run)
    run.mkdir(parents=True, exist_ok=True)
    (run / config_file).write_text(json.dumps(dataclasses.asdict(cfg), indent=2, default=str))
    return run


def _refuse_existing_run(cfg: RunConfig, run: Path) -> None:
    """ConfigError when ``run`` holds a run and neither --resume nor --overwrite was given."""
    if (run / CHECKPOINTS).exists() and not (cfg.resume or cfg.overwrite):
        raise ConfigError(
            f"{run} already holds a training run; pass --resume to continue it or "
            "--overwrite to start over (deletes it), or choose another --out"
        )


def _check_resumable(run: Path, resume_from: str, is_dir: bool) -> None:
    """ConfigError when ``run / resume_from`` is missing (or is no folder, for ``is_dir``)."""
    target = run / resume_from
    if not (target.is_dir() if is_dir else target.exists()):
        raise ConfigError(f"--resume: {run}/{resume_from} does not exist; nothing to resume")
