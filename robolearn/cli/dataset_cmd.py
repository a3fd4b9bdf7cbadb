"""``robolearn dataset``: inspect, split, merge and import LeRobot v3 datasets.

One operation per call, named by a verb (``robolearn dataset info DIR`` is another spelling
of ``robolearn dataset --info DIR``; see :func:`robolearn.cli.main.dataset_verbs`)::

    robolearn dataset info DIR
    robolearn dataset stats DIR
    robolearn dataset split DIR --out A --out2 B --fraction 0.9   # or --episodes 0 3 5
    robolearn dataset merge A B --out C
    robolearn dataset import-robomimic FILE.hdf5 --out DIR

Split and merge re-write episodes (videos are decoded and re-encoded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from robolearn.cli.common import Subcommand, format_table
from robolearn.core.types import ConfigError


@dataclass
class DatasetConfig:
    """Inspect (--info, --stats), split, merge or import (--import-robomimic) datasets."""

    info: Path | None = None
    """Print a dataset's episodes, frames, fps, features, tasks and size on disk."""
    stats: Path | None = None
    """Print a dataset's per-feature min/max/mean/std (meta/stats.json)."""
    split: Path | None = None
    """Split a dataset into --out (the --episodes, or the first --fraction) and --out2."""
    merge: list[Path] = field(default_factory=list)
    """Merge these datasets (same fps and features) into --out."""
    import_robomimic: Path | None = None
    """Convert a robomimic HDF5 file into a LeRobot v3 dataset at --out."""
    out: Path | None = None
    """Output dataset (split: the first part)."""
    out2: Path | None = None
    """Second output dataset of --split."""
    fraction: float = 0.9
    """--split: fraction of episodes (the first ones) that go to --out."""
    episodes: list[int] = field(default_factory=list)
    """--split: episodes that go to --out (overrides --fraction)."""
    fps: float = 20.0
    """--import-robomimic: frames per second of the demonstrations."""
    overwrite: bool = False
    """Replace existing output datasets."""
    json: bool = False
    """--info/--stats: print JSON instead of a table."""

    def __post_init__(self) -> None:
        ops = [self.info, self.stats, self.split, self.merge or None, self.import_robomimic]
        given = sum(op is not None for op in ops)
        if given != 1:
            raise ConfigError(
                "give exactly one of --info, --stats, --split, --merge, --import-robomimic"
            )
        needs_out = self.split is not None or self.merge or self.import_robomimic is not None
        if needs_out and self.out is None:
            raise ConfigError("--out is required for --split, --merge and --import-robomimic")
        if self.split is not None and self.out2 is None:
            raise ConfigError("--split needs --out2 for the remaining episodes")
        if self.merge and len(self.merge) < 2:
            raise ConfigError("--merge needs at least two datasets")


def run(cfg: DatasetConfig) -> int:
    """Run the chosen operation."""
    if cfg.info is not None:
        return _info(cfg.info, cfg.json)
    if cfg.stats is not None:
        return _stats(cfg.stats, cfg.json)
    if cfg.split is not None:
        return _split(cfg)
    if cfg.merge:
        return _merge(cfg)
    return _import(cfg)


def _info(root: Path, as_json: bool) -> int:
    from robolearn.data import DatasetReader
    from robolearn.data.tools import info_summary

    with DatasetReader(root) as reader:
        summary = info_summary(reader)
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"dataset   {summary['root']}")
    print(f"episodes  {summary['episodes']}")
    print(f"frames    {summary['frames']}")
    print(f"fps       {summary['fps']:g}")
    print(f"size      {summary['size_bytes'] / 1e6:.2f} MB")
    print("tasks     " + "; ".join(summary["tasks"]))
    rows = [(k, d, tuple(s)) for k, (d, s) in summary["features"].items()]
    print(format_table(["feature", "dtype", "shape"], rows))
    return 0


def _stats(root: Path, as_json: bool) -> int:
    from robolearn.data import DatasetReader
    from robolearn.data.tools import stats_summary

    with DatasetReader(root) as reader:
        summary = stats_summary(reader)
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    stat_names = ("min", "max", "mean", "std")
    rows = [
        (key, entry, *(f"{stats[s][i]:.4g}" if s in stats else "-" for s in stat_names))
        for key, stats in summary.items()
        for i, entry in enumerate(stats["names"])
    ]
    print(format_table(["feature", "entry", *stat_names], rows))
    return 0


def _split(cfg: DatasetConfig) -> int:
    from robolearn.data import DatasetReader
    from robolearn.data.tools import copy_episodes, split_episodes

    assert cfg.split is not None and cfg.out is not None and cfg.out2 is not None
    with DatasetReader(cfg.split) as reader:
        first, rest = split_episodes(reader.num_episodes, cfg.fraction, cfg.episodes)
        copy_episodes([(reader, first)], cfg.out, cfg.overwrite)
        copy_episodes([(reader, rest)], cfg.out2, cfg.overwrite)
    print(f"wrote {len(first)} episode(s) to {cfg.out} and {len(rest)} to {cfg.out2}")
    return 0


def _merge(cfg: DatasetConfig) -> int:
    from robolearn.data import DatasetReader
    from robolearn.data.tools import check_same_env, check_same_layout, copy_episodes

    assert cfg.out is not None
    readers = [DatasetReader(root) for root in cfg.merge]
    try:
        for other in readers[1:]:
            check_same_env(readers[0], other)
            check_same_layout(readers[0], other)
        count = copy_episodes([(r, range(r.num_episodes)) for r in readers], cfg.out, cfg.overwrite)
    finally:
        for reader in readers:
            reader.close()
    print(f"merged {count} episode(s) from {len(readers)} datasets into {cfg.out}")
    return 0


def _import(cfg: DatasetConfig) -> int:
    from robolearn.data.robomimic import import_robomimic

    assert cfg.import_robomimic is not None and cfg.out is not None
    count = import_robomimic(cfg.import_robomimic, cfg.out, fps=cfg.fps, overwrite=cfg.overwrite)
    print(f"imported {count} demo(s) from {cfg.import_robomimic} into {cfg.out}")
    return 0


COMMAND = Subcommand(
    name="dataset",
    help="inspect, split, merge or import (robomimic HDF5) LeRobot v3 datasets",
    config=DatasetConfig,
    run=run,
)
