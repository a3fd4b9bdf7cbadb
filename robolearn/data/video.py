"""Write RGB frames to an mp4 file through PyAV, and tile several camera images into one.

::

    with VideoWriter("out/episode.mp4", fps=20) as video:
        for frame in frames:          # (H, W, 3) uint8
            video.write(frame)

Frames of odd width or height are padded (black, bottom/right) to even sizes, which
``yuv420p`` requires. Every frame of one video must have the size of the first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.codec
import av.container
import av.video.stream
import numpy as np
from numpy.typing import NDArray

from robolearn.core.types import ConfigError

Frame = NDArray[np.uint8]
"""An RGB image, (H, W, 3) uint8."""


class VideoWriter:
    """Encode RGB uint8 frames to a video file (mp4 by default); use as a context manager.

    The stream is created on the first :meth:`write`, from that frame's size. Closing a
    writer that got no frames leaves no file behind.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 30.0,
        codec: str = "libx264",
        pixel_format: str = "yuv420p",
        options: dict[str, str] | None = None,
    ) -> None:
        """Open ``path`` for writing (parent folders are created).

        Args:
            path: output file; the container format follows its extension.
            fps: frames per second of the video.
            codec: an encoder PyAV knows, e.g. ``libx264``, ``h264``, ``mpeg4``.
            pixel_format: the encoder's pixel format.
            options: encoder options, e.g. ``{"crf": "23"}`` for libx264.
        """
        if fps <= 0:
            raise ConfigError(f"fps must be positive, got {fps}")
        check_video_encoder(codec)
        self.path = Path(path)
        self.fps = fps
        self.codec = codec
        self.pixel_format = pixel_format
        self.options = dict(options or {})
        self.frames_written = 0
        """Frames encoded so far."""
        self._frame_hw: tuple[int, int] | None = None  # (H, W) before padding
        self._stream: av.video.stream.VideoStream | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container: av.container.OutputContainer | None = av.open(str(self.path), mode="w")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._container is None

    def write(self, frame: Frame) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        if self._container is None:
            raise ConfigError(f"VideoWriter for {self.path} is closed")
        rgb = _check_frame(frame)
        if self._stream is None:
            self._stream = self._open_stream(self._container, rgb.shape[0], rgb.shape[1])
        if rgb.shape[:2] != self._frame_hw:
            raise ConfigError(
                f"frame {self.frames_written} has size {rgb.shape[:2]}, "
                f"but this video's frames are {self._frame_hw} (H, W)"
            )
        video_frame = av.VideoFrame.from_ndarray(pad_to_even(rgb), format="rgb24")
        self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and close the file; idempotent."""
        if self._container is None:
            return
        container, self._container = self._container, None
        if self._stream is not None:
            container.mux(self._stream.encode(None))  # flush delayed frames
        container.close()
        if self.frames_written == 0:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open_stream(
        self, container: av.container.OutputContainer, height: int, width: int
    ) -> av.video.stream.VideoStream:
        """Create the video stream for frames of ``height`` × ``width`` (before padding)."""
        self._frame_hw = (height, width)
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = container.add_stream(self.codec, rate=rate, options=self.options or None)
        assert isinstance(stream, av.video.stream.VideoStream)  # checked in __init__
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = self.pixel_format
        return stream


def pad_to_even(frame: Frame) -> Frame:
    """Pad an (H, W, C) image with black on the bottom/right so that H and W are even."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h == 0 and pad_w == 0:
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)))


def tile_frames(frames: Sequence[Frame], pad_value: int = 0) -> Frame:
    """Place (H_i, W_i, 3) images side by side, left to right → (max H_i, sum W_i, 3).

    Shorter images are padded at the bottom with ``pad_value``; no image is resized.
    """
    if len(frames) == 0:
        raise ConfigError("tile_frames needs at least one frame")
    images = [_check_frame(f) for f in frames]
    height = max(img.shape[0] for img in images)
    padded = [
        np.pad(img, ((0, height - img.shape[0]), (0, 0), (0, 0)), constant_values=pad_value)
        for img in images
    ]
    return np.concatenate(padded, axis=1)


def check_video_encoder(codec: str) -> None:
    """Raise ConfigError unless PyAV can encode video with ``codec``."""
    try:
        kind = av.codec.Codec(codec, "w").type
    except ValueError:  # av's UnknownCodecError
        kind = None
    if kind != "video":
        raise ConfigError(
            f"{codec!r} is not a video encoder PyAV knows; try 'libx264', 'libsvtav1' or 'mpeg4'"
        )


def _check_frame(frame: Frame) -> Frame:
    """``frame`` as a C-contiguous (H, W, 3) uint8 array; ConfigError otherwise."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ConfigError(
            f"frames must be (H, W, 3) uint8 RGB images, got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError(f"frames must not be empty, got shape {arr.shape}")
    return np.ascontiguousarray(arr)
