"""``robolearn view``: an episode as an mp4 — camera frames side by side above line plots
of ``observation.state`` and ``action`` (drawn with PIL; no matplotlib needed).

With ``--rerun`` and ``rerun-sdk`` importable, the episode is logged to a rerun viewer instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.cli.common import Subcommand
from robolearn.core.paths import require_mp4

PLOT_HEIGHT = 96
"""Height in pixels of each trace plot."""
COLORS = [
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (128, 128, 0),
]


@dataclass
class ViewConfig:
    """Render a recorded episode to an mp4 (cameras + state/action traces) or to rerun."""

    dataset: Path
    """Dataset folder."""
    episode: int = 0
    """Episode to show."""
    out: Path = Path("episode.mp4")
    """Output video."""
    rerun: bool = False
    """Log to rerun (robolearn[viewer]) instead of writing an mp4: into a viewer it starts,
    or into the recording ``--out`` when that ends in ``.rrd`` (open it with ``rerun FILE``)."""

    def __post_init__(self) -> None:
        if not (self.rerun and self.out.suffix == ".rrd"):
            require_mp4(self.out)


def plot_traces(values: np.ndarray, t: int, width: int, height: int, title: str) -> np.ndarray:
    """(height, width, 3) uint8 plot of ``values`` (T, D) with a cursor at frame ``t``."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    length = max(len(values), 2)
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else 1.0
    xs = np.arange(len(values)) * (width - 1) / (length - 1)
    for d in range(values.shape[1]):
        ys = (height - 2) - (values[:, d] - lo) / span * (height - 14)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=COLORS[d % len(COLORS)])
    cursor = t * (width - 1) / (length - 1)
    draw.line([(cursor, 0), (cursor, height)], fill=(0, 0, 0))
    draw.text((2, 0), title, fill=(0, 0, 0))
    return np.asarray(image)


def compose_frames(reader: Any, episode: int) -> list[np.ndarray]:
    """Every frame of ``episode`` as one (H, W, 3) uint8 picture."""
    columns = reader.episode(episode)
    times = np.asarray(columns["timestamp"], np.float64).reshape(-1)
    rgb = [k for k in reader.camera_keys if reader.features[k].dtype == "video"]
    cams = [reader.frames(k, episode, times) for k in rgb]
    width = sum(c.shape[2] for c in cams) if cams else 256
    width = max(width, 128)
    traces = [k for k in ("observation.state", "action") if k in columns]
    pictures = []
    for t in range(len(times)):
        rows = []
        if cams:
            row = np.concatenate([c[t] for c in cams], axis=1)
            rows.append(np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))))
        for key in traces:
            values = np.asarray(columns[key], np.float64).reshape(len(times), -1)
            rows.append(plot_traces(values, t, width, PLOT_HEIGHT, key))
        pictures.append(_even(np.concatenate(rows, axis=0)))
    return pictures


def _even(image: np.ndarray) -> np.ndarray:
    """Crop to even height and width (yuv420p needs them)."""
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[: h - h % 2, : w - w % 2])


def run(cfg: ViewConfig) -> int:
    """Write the video (or log to rerun)."""
    from robolearn.data import DatasetReader

    with DatasetReader(cfg.dataset) as reader:
        if cfg.rerun:
            return _log_rerun(reader, cfg.episode, cfg.out if cfg.out.suffix == ".rrd" else None)
        pictures = compose_frames(reader, cfg.episode)
        fps = reader.fps
    from robolearn.data.video import VideoWriter

    writer = VideoWriter(cfg.out, fps=fps)
    try:
        for picture in pictures:
            writer.write(picture)
    finally:
        writer.close()
    print(f"wrote {len(pictures)} frames to {cfg.out}")
    return 0


def _log_rerun(reader: Any, episode: int, recording: Path | None = None) -> int:
    """Log ``episode``'s state, actions and cameras to rerun: a spawned viewer, or the
    ``.rrd`` file ``recording``."""
    from robolearn.core.extras import require

    rr: Any = require("rerun", "robolearn view --rerun")
    rr.init("robolearn view", spawn=recording is None)
    if recording is not None:
        rr.save(str(recording))
    columns = reader.episode(episode)
    times = np.asarray(columns["timestamp"], np.float64).reshape(-1)
    cams = {k: reader.frames(k, episode, times) for k in reader.camera_keys}
    for t, stamp in enumerate(times):
        rr.set_time("time", duration=float(stamp))
        for key in ("observation.state", "action"):
            rr.log(key, rr.Scalars(np.ravel(columns[key][t]).astype(np.float64)))
        for key, frames in cams.items():
            rr.log(key, rr.Image(frames[t]))
    rr.disconnect()
    where = recording if recording is not None else "the rerun viewer"
    print(f"logged {len(times)} frames of episode {episode} to {where}")
    return 0


COMMAND = Subcommand(
    name="view",
    help="render a recorded episode to an mp4 (cameras + traces) or to rerun",
    config=ViewConfig,
    run=run,
)
