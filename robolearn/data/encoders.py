"""Background encoders: each camera's frames are encoded on its own thread while recording.

:class:`CameraEncoder` takes validated frames from the recording thread (``submit`` only
queues them) and encodes them on a worker thread, so that ending an episode only waits for
the last few queued frames and the encoder flush. RGB goes through
:class:`robolearn.data.video.VideoWriter`; depth through :class:`DepthWriter` (FFV1 ``gray16le``
in Matroska, lossless). Both also accumulate the camera's statistics.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import av.container
import av.video.stream
import numpy as np

from robolearn.core.stats import HistogramStats, Stats
from robolearn.data.features import DEPTH, Feature, depth_to_mm
from robolearn.data.format import DatasetError
from robolearn.data.video import VideoWriter

DEPTH_CODEC = "ffv1"
DEPTH_PIX_FMT = "gray16le"
DEPTH_OPTIONS = {"g": "1"}
"""Every depth frame a key frame, so any frame decodes without its predecessors."""

DEFAULT_VIDEO_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"g": "2", "crf": "23", "preset": "veryfast"},
    "h264": {"g": "2", "crf": "23", "preset": "veryfast"},
    "libx265": {"g": "2", "crf": "28", "preset": "veryfast"},
    "libsvtav1": {"g": "2", "crf": "30", "preset": "8"},
}
"""Encoder options used when none are given: a key frame every 2 frames (as LeRobot does),
so that decoding any frame costs at most one extra frame."""


def default_video_options(codec: str) -> dict[str, str]:
    """The options :class:`DatasetWriter` uses for ``codec`` when given none."""
    return dict(DEFAULT_VIDEO_OPTIONS.get(codec, {"g": "2"}))


class _FrameSink(Protocol):
    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


class DepthWriter:
    """Encode (H, W) uint16 depth codes losslessly (FFV1 ``gray16le``) to a .mkv file."""

    def __init__(self, path: Path, fps: float) -> None:
        """Open ``path`` for writing at ``fps`` frames per second."""
        self.path = path
        self.fps = fps
        self.frames_written = 0
        self._stream: av.video.stream.VideoStream | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container: av.container.OutputContainer = av.open(str(path), mode="w")

    def write(self, frame: np.ndarray) -> None:
        """Encode one (H, W) uint16 frame."""
        if self._stream is None:
            self._stream = self._open_stream(frame.shape[0], frame.shape[1])
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=DEPTH_PIX_FMT)
        self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush and close the file."""
        if self._stream is not None:
            self._container.mux(self._stream.encode(None))
        self._container.close()

    def _open_stream(self, height: int, width: int) -> av.video.stream.VideoStream:
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream(DEPTH_CODEC, rate=rate, options=dict(DEPTH_OPTIONS))
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, DEPTH_PIX_FMT
        return stream


class CameraEncoder:
    """Encode one camera's frames of one episode on a worker thread.

    ``submit`` queues a validated frame ((H, W, 3) uint8 RGB, or (H, W, 1) float32 metres
    for depth) and returns at once. ``finish`` waits for the queue to drain, closes the file
    and returns the camera's statistics. ``abort`` stops without waiting for the queue. An
    encoding failure is raised (as :class:`DatasetError` naming the file) by the next
    ``submit`` or by ``finish``.
    """

    def __init__(
        self,
        key: str,
        feature: Feature,
        path: Path,
        fps: float,
        codec: str,
        options: dict[str, str],
    ) -> None:
        """Start the worker for camera ``key`` writing ``path``."""
        self.key, self.path = key, path
        self._is_depth = feature.dtype == DEPTH
        if self._is_depth:
            self._stats = HistogramStats(1, 1 << 16, scale=1e-3)  # mm codes → metres
        else:
            self._stats = HistogramStats(3, 256, scale=1.0 / 255.0)
        self._sink: _FrameSink = (
            DepthWriter(path, fps)
            if self._is_depth
            else VideoWriter(path, fps=fps, codec=codec, options=options)
        )
        self._queue: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"encode-{key}", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Frames queued but not yet encoded."""
        return self._queue.qsize()

    def submit(self, frame: np.ndarray) -> None:
        """Queue one frame for encoding."""
        self._raise_if_failed()
        self._queue.put(frame)

    def finish(self) -> Stats:
        """Encode what is queued, close the file, return the camera's statistics."""
        self._queue.put(None)
        self._thread.join()
        self._raise_if_failed()
        return self._stats.stats()

    def abort(self) -> None:
        """Stop encoding now; the (partial) file is left for the caller to delete."""
        self._abort.set()
        self._queue.put(None)
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise DatasetError(
                f"encoding {self.key!r} into {self.path} failed: {self._error}"
            ) from self._error

    def _run(self) -> None:
        try:
            while (frame := self._queue.get()) is not None:
                if self._abort.is_set():
                    continue
                if self._error is None:
                    self._encode(frame)
        except Exception as e:  # a worker's failure is re-raised on the recording thread
            self._error = e
            self._drain()
        finally:
            self._close_sink()

    def _encode(self, frame: np.ndarray) -> None:
        if self._is_depth:
            codes = depth_to_mm(frame)  # (H, W, 1) uint16
            self._stats.add(codes)
            self._sink.write(codes[..., 0])
        else:
            self._stats.add(frame)
            self._sink.write(frame)

    def _drain(self) -> None:
        while self._queue.get() is not None:
            pass

    def _close_sink(self) -> None:
        try:
            self._sink.close()
        except (av.FFmpegError, OSError, ValueError) as e:
            if self._error is None:
                self._error = e
