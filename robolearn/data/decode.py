"""Decode video frames by timestamp, keeping decoders open between calls.

:class:`VideoFile` seeks once to the key frame before the first requested time and decodes
forward until the last one, so a window of consecutive frames costs one seek. When the next
request starts a little after where decoding stopped, it simply decodes on; the last frames
it returned are kept, so overlapping windows (sliding over an episode) decode each frame
once. :class:`DecoderCache` keeps a bounded number of files open per process: a forked
DataLoader worker opens its own (the parent's are kept alive but never touched there, since
freeing FFmpeg state across a fork can hang), and a pickled cache arrives empty.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import av.container
import av.video.stream
import numpy as np
from av.video.reformatter import VideoReformatter

from robolearn.data.format import DatasetError

RECENT_FRAMES = 32
"""Decoded frames each open file remembers (the most recently returned)."""

_INHERITED: list[object] = []
"""Decoders a forked process inherited: referenced forever so that they are never freed."""


class VideoFile:
    """One open video file whose frames are looked up by presentation time (seconds)."""

    def __init__(
        self,
        path: Path,
        frame_hw: tuple[int, int],
        pixel_format: str,
        tolerance_s: float,
        max_skip_s: float,
    ) -> None:
        """Open ``path``; frames must be ``frame_hw`` (H, W) and come out as ``pixel_format``.

        A requested time matches the frame within ``tolerance_s`` of it. When a request
        starts at most ``max_skip_s`` after the last decoded frame, decoding continues
        instead of seeking.
        """
        self.path = path
        self.frame_hw = frame_hw
        self.pixel_format = pixel_format
        self.tolerance_s = tolerance_s
        self.max_skip_s = max_skip_s
        self.lock = threading.Lock()
        try:
            self._container: av.container.InputContainer = av.open(str(path), mode="r")
            self._stream: av.video.stream.VideoStream = self._container.streams.video[0]
            # One decoding thread: DataLoader workers give the parallelism, and a decoder
            # without a thread pool survives fork (see DecoderCache).
            self._stream.codec_context.thread_count = 1
        except (av.FFmpegError, IndexError, OSError) as e:
            raise DatasetError(f"cannot open video {path} (truncated or corrupt?): {e}") from e
        if self._stream.time_base is None:
            raise DatasetError(f"{path}: the video stream has no time base")
        self._time_base = float(self._stream.time_base)
        self._frames: Iterator[av.VideoFrame] | None = None
        self._reformatter = VideoReformatter()  # one converter for every frame: ~30× faster
        self._last_time: float | None = None  # time of the last decoded frame
        self._recent: OrderedDict[float, np.ndarray] = OrderedDict()

    def read(self, times_s: np.ndarray) -> list[np.ndarray]:
        """The frames at ``times_s`` (seconds in the file), in the order asked."""
        out: list[np.ndarray | None] = [self._recent_frame(t) for t in times_s]
        missing = sorted({float(t) for t, f in zip(times_s, out, strict=True) if f is None})
        if missing:
            found = self._decode(np.array(missing))
            found_times = np.array(sorted(found))  # (M,)
            nearest = _nearest(found_times, np.asarray(times_s, np.float64))  # (N,)
            out = [
                f if f is not None else found[float(found_times[j])]
                for f, j in zip(out, nearest, strict=True)
            ]
        return [f for f in out if f is not None]

    def close(self) -> None:
        """Close the file."""
        self._frames = None
        self._container.close()

    def _recent_frame(self, t: float) -> np.ndarray | None:
        for time, frame in self._recent.items():
            if abs(time - t) <= self.tolerance_s:
                return frame
        return None

    def _decode(self, targets: np.ndarray) -> dict[float, np.ndarray]:
        """Decode frames at the sorted ``targets``; frame time → (H, W, C) array."""
        self._position_before(float(targets[0]))
        assert self._frames is not None
        found: dict[float, np.ndarray] = {}
        j = 0
        try:
            for frame in self._frames:
                if frame.pts is None:
                    continue
                time = float(frame.pts * self._time_base)
                self._last_time = time
                if targets[j] < time - self.tolerance_s:
                    raise self._missing(float(targets[j]), time)
                if abs(targets[j] - time) <= self.tolerance_s:
                    found[time] = self._to_array(frame, time)
                    while j < len(targets) and abs(targets[j] - time) <= self.tolerance_s:
                        j += 1
                    if j == len(targets):
                        return found
        except av.FFmpegError as e:
            self._frames = None
            raise DatasetError(f"cannot decode {self.path} (corrupt?): {e}") from e
        self._frames, self._last_time = None, None
        raise DatasetError(
            f"{self.path} ends before t={targets[j]:.4f} s: the file is truncated or shorter "
            "than its episode metadata says"
        )

    def _position_before(self, first: float) -> None:
        """Seek (or keep decoding) so that the next decoded frame is at or before ``first``."""
        last = self._last_time
        if (
            self._frames is not None
            and last is not None
            and last < first - self.tolerance_s
            and first - last <= self.max_skip_s
        ):
            return
        offset = int(np.floor(max(0.0, first - self.tolerance_s) / self._time_base))
        try:
            self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError as e:
            raise DatasetError(f"cannot seek in {self.path} (corrupt?): {e}") from e
        self._frames = self._container.decode(self._stream)
        self._last_time = None

    def _to_array(self, frame: av.VideoFrame, time: float) -> np.ndarray:
        if (frame.height, frame.width) != self.frame_hw:
            raise DatasetError(
                f"{self.path} has {frame.height}×{frame.width} frames but meta/info.json "
                f"says {self.frame_hw[0]}×{self.frame_hw[1]}"
            )
        if frame.format.name != self.pixel_format:
            frame = self._reformatter.reformat(frame, format=self.pixel_format)
        arr = frame.to_ndarray()
        self._recent[time] = arr
        if len(self._recent) > RECENT_FRAMES:
            self._recent.popitem(last=False)
        return arr

    def _missing(self, target: float, decoded: float) -> DatasetError:
        self._frames, self._last_time = None, None
        return DatasetError(
            f"{self.path} has no frame at t={target:.4f} s (next frame at {decoded:.4f} s): "
            "frames are missing or the timestamps disagree with the metadata"
        )


def _nearest(sorted_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index into ``sorted_times`` of the entry nearest to each of ``times``."""
    right = np.clip(np.searchsorted(sorted_times, times), 1, max(len(sorted_times) - 1, 1))
    left = right - 1
    if len(sorted_times) == 1:
        return np.zeros(len(times), dtype=np.int64)
    closer_left = np.abs(times - sorted_times[left]) <= np.abs(sorted_times[right] - times)
    return np.where(closer_left, left, right)


class DecoderCache:
    """Open :class:`VideoFile`s of this process, the least recently used closed first."""

    def __init__(self, max_open: int = 64) -> None:
        """Keep at most ``max_open`` files open."""
        self.max_open = max_open
        self._files: OrderedDict[Path, VideoFile] = OrderedDict()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, path: Path, **kwargs: Any) -> VideoFile:
        """The open file at ``path`` (opened with ``kwargs`` for :class:`VideoFile`)."""
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's decoders are not ours
                _INHERITED.append(self._files)
                self._files, self._pid = OrderedDict(), os.getpid()
            video = self._files.get(path)
            if video is None:
                video = VideoFile(path, **kwargs)
                self._files[path] = video
                self._evict()
            self._files.move_to_end(path)
            return video

    def discard(self, path: Path) -> None:
        """Close and forget ``path`` (after an error left its decoder in doubt)."""
        with self._lock:
            video = self._files.pop(path, None)
        if video is not None:
            video.close()

    def close(self) -> None:
        """Close every open file."""
        with self._lock:
            files, self._files = self._files, OrderedDict()
        for video in files.values():
            video.close()

    def _evict(self) -> None:
        while len(self._files) > self.max_open:
            _, video = self._files.popitem(last=False)
            video.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_open": self.max_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_open"])  # type: ignore[misc]


class EpisodeFrames:
    """Decoded frames of whole (camera, episode) pairs, within a byte budget per process.

    Used only when a dataset's decoded cameras fit in the budget as a whole: shuffled
    training windows then decode each episode once, sequentially, and afterwards cost an
    array lookup. (With a partial fit every miss would decode a whole episode for a window
    of a few frames, so the reader does not use the cache then.) A pickled cache arrives
    empty; a forked DataLoader worker shares what was decoded before the fork and fills its
    own copy after.
    """

    def __init__(self, budget_bytes: int) -> None:
        """Hold at most ``budget_bytes`` of decoded frames."""
        self.budget_bytes = budget_bytes
        self._episodes: dict[tuple[str, int], np.ndarray] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, camera: str, episode: int) -> np.ndarray | None:
        """The decoded frames of ``episode`` (N, H, W[, C]), or None when not decoded yet."""
        return self._episodes.get((camera, episode))

    def put(self, camera: str, episode: int, frames: np.ndarray) -> None:
        """Keep ``frames`` when they fit in what is left of the budget."""
        with self._lock:
            if (camera, episode) in self._episodes:
                return
            if self._bytes + frames.nbytes <= self.budget_bytes:
                frames.setflags(write=False)
                self._episodes[(camera, episode)] = frames
                self._bytes += frames.nbytes

    @property
    def nbytes(self) -> int:
        """Bytes of decoded frames held."""
        return self._bytes

    def clear(self) -> None:
        """Drop every decoded episode."""
        with self._lock:
            self._episodes, self._bytes = {}, 0

    def __getstate__(self) -> dict[str, Any]:
        return {"budget_bytes": self.budget_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["budget_bytes"])  # type: ignore[misc]
