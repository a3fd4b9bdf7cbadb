"""Episodes ⇄ disk in the LeRobotDataset v3.0 layout, and torch datasets over them.

* :class:`DatasetWriter` records episodes (crash-safe; see :mod:`robolearn.data.format`);
* :class:`DatasetReader` reads datasets written here or by Hugging Face LeRobot ≥ 0.4;
* :class:`~robolearn.data.torch_dataset.WindowedDataset` serves (observation history,
  action chunk) training samples, normalized with :class:`Normalizer`.

The torch dataset is imported from :mod:`robolearn.data.torch_dataset` (it needs torch).
"""

from robolearn.data.features import DEFAULT_FEATURES, Feature
from robolearn.data.format import CODEBASE_VERSION, DatasetError
from robolearn.data.reader import DatasetReader
from robolearn.data.writer import DatasetWriter, WriteMode, repair_dataset

LeRobotDatasetReader = DatasetReader
"""Alias of :class:`DatasetReader`."""

__all__ = [
    "CODEBASE_VERSION",
    "DEFAULT_FEATURES",
    "DatasetError",
    "DatasetReader",
    "DatasetWriter",
    "Feature",
    "LeRobotDatasetReader",
    "WriteMode",
    "repair_dataset",
]
