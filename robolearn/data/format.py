"""The on-disk layout: LeRobotDataset v3.0, plus a depth extension, and how writes commit.

Layout (``codebase_version`` ``"v3.0"``, as Hugging Face LeRobot ≥ 0.4 reads it)::

    root/
    ├── meta/info.json                          fps, features, totals, path templates
    ├── meta/stats.json                         per-feature min/max/mean/std/count/q01…q99
    ├── meta/tasks.parquet                      task (pandas index) → task_index
    ├── meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks, where
    │                                           its data/video rows live, its own stats
    ├── data/chunk-000/file-000.parquet         frame rows: every non-image feature plus
    │                                           timestamp, frame_index, episode_index, index,
    │                                           task_index
    ├── videos/<video key>/chunk-000/file-000.mp4   RGB video, frames located by timestamp
    └── depth/<depth key>/chunk-000/file-000.mkv    robolearn extension (see below)

``chunk-XXX`` folders hold at most ``chunks_size`` (1000) files each. This writer puts one
episode in each data, video and depth file (``file_index`` counts up, rolling over into the
next chunk); the reader also reads files holding several episodes, as LeRobot writes them.
Episode metadata rows are grouped, up to :data:`EPISODES_PER_META_FILE` per file.

Depth (extension): depth maps are stored losslessly as whole millimetres (``uint16``,
0 = no reading, range 0–65.535 m) in FFV1 ``gray16le`` video inside Matroska, every frame a
key frame. LeRobot's own depth support (≥ 0.6) quantizes to 12 bits and older versions have
none, so depth features live outside ``info.json["features"]``, under
``info.json["robolearn"]["depth_features"]``, with the file template in
``info.json["robolearn"]["depth_path"]``; episode rows carry ``depth/<key>/…`` columns and
``stats.json`` carries their statistics in metres. LeRobot ignores all of it and loads the
rest of the dataset; name depth keys without ``image`` in them (e.g.
``observation.depth.front``), because LeRobot checks every stats entry whose key contains
``image`` for an RGB (3, 1, 1) shape.

Commit protocol (crash safety). The episode rows in ``meta/episodes/`` are the single source
of truth: an episode exists once its row is on disk, and ``info.json`` and ``stats.json`` are
caches derived from those rows. Saving episode ``k``:

1. While recording, video and depth encoders write into ``root/.staging/episode-k/``;
   nothing outside ``.staging`` refers to these files.
2. ``save_episode`` finishes the encoders, writes the frame table to
   ``.staging/episode-k/data.parquet`` and fsyncs every staged file.
3. Each staged file is moved to its final name with :func:`os.replace` (atomic), and the
   folder is fsynced. These files are not yet referenced by any metadata.
4. If the episode's task is new, ``meta/tasks.parquet`` is rewritten atomically (write
   ``.tasks.parquet.tmp``, fsync, :func:`os.replace`, fsync the folder).
5. **Commit**: the episode metadata file that receives row ``k`` is rewritten atomically the
   same way. From here on, the episode is saved.
6. ``stats.json`` and then ``info.json`` are rewritten atomically.

A crash (even SIGKILL) before step 5 leaves the previous episodes untouched plus files
nobody references: a stray ``.staging`` folder, ``.*.tmp`` files, or data/video/depth files
past the last committed episode. Readers never look at them (LeRobot counts frames from
``info.json``, and stray data files sort after every committed one), and
:func:`robolearn.data.writer.repair_dataset` — run by ``DatasetWriter(mode="resume")`` —
deletes them. A crash between steps 5 and 6 leaves ``info.json``/``stats.json`` one episode
behind: the reader recomputes them from the episode rows (and warns), and ``resume``
rewrites them; LeRobot, which counts from ``info.json``, does not see that last episode
until then (and loads the rest). Only the episode in progress can be lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.core.types import RobolearnError

CODEBASE_VERSION = "v3.0"
"""The LeRobotDataset format version this package writes and reads."""
CHUNKS_SIZE = 1000
"""Files per ``chunk-XXX`` folder."""
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
EPISODES_PER_META_FILE = 1000
"""Episode rows per ``meta/episodes`` file written here."""

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
STAGING_DIR = ".staging"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
DEPTH_PATH = "depth/{depth_key}/" + CHUNK_FILE + ".mkv"
EXTENSION_KEY = "robolearn"
"""Top-level ``info.json`` key of robolearn's extension (depth features)."""
PARQUET_COMPRESSION = "snappy"


class DatasetError(RobolearnError, ValueError):
    """A dataset on disk is missing, corrupt or inconsistent; the message names the file."""


class EpisodeIndexError(DatasetError, IndexError):
    """An episode index outside the dataset."""


def next_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The ``(chunk, file)`` after ``(chunk_index, file_index)``: files fill a chunk first."""
    if file_index + 1 >= chunks_size:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """The hidden sibling a file is written to before it replaces ``path``.

    Its name starts with a dot and ends with ``.tmp``, so no ``*.parquet`` / ``*.json`` glob
    (LeRobot's included) ever picks up a half-written file.
    """
    return path.with_name(f".{path.name}.tmp")


def move_into_place(src: Path, dst: Path) -> None:
    """Atomically rename the finished file ``src`` to ``dst`` (same file system)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fsync_file(src)
    os.replace(src, dst)
    fsync_dir(dst.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (the style of LeRobot's meta files)."""
    text = json.dumps(obj, indent=4, ensure_ascii=False)
    atomic_write_bytes(path, text.encode("utf-8"))


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` and fsync it (not atomic: use for staged files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression=PARQUET_COMPRESSION)
    fsync_file(path)


def atomic_write_parquet(path: Path, table: pa.Table) -> None:
    """Atomically replace ``path`` by ``table`` as a parquet file."""
    tmp = temp_path(path)
    write_parquet(tmp, table)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    """Load a JSON file; :class:`DatasetError` naming it if missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON (truncated or corrupt?): {e}") from e


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Load a parquet file; :class:`DatasetError` naming it if missing, truncated or corrupt."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DatasetError(f"cannot read {path} (truncated or corrupt parquet?): {e}") from e


def read_parquet_schema(path: Path) -> pa.Schema:
    """The schema in a parquet file's footer; :class:`DatasetError` naming it if unreadable."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DatasetError(f"cannot read {path} (truncated or corrupt parquet?): {e}") from e
