"""``robolearn find-cameras``: list connected RealSense cameras and V4L2 video devices.

RealSense cameras come from the SDK (name, serial, firmware, USB link); OpenCV cameras are
the ``/dev/video*`` nodes, described by their V4L2 driver. Each section says ``none found``
when it is empty, so the command also runs cleanly on a machine without cameras::

    robolearn find-cameras            # tables
    robolearn find-cameras --modes    # and each camera's resolutions and frame rates
    robolearn find-cameras --json
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robolearn.cli.common import Subcommand, format_table

REALSENSE_HEADERS = ("name", "serial", "firmware", "usb", "port")
VIDEO_HEADERS = ("device", "index", "name", "driver", "bus", "capture")


@dataclass
class FindCamerasConfig:
    """List connected RealSense cameras and OpenCV/V4L2 video devices (/dev/video*)."""

    modes: bool = False
    """Also list each camera's resolutions and frame rates."""
    json: bool = False
    """Print JSON instead of tables."""


def run(cfg: FindCamerasConfig) -> int:
    """Print both lists."""
    report = {"realsense": realsense_report(cfg.modes), "video": video_report(cfg.modes)}
    if cfg.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def realsense_report(with_modes: bool) -> dict[str, Any]:
    """``{"devices": [...], "error": str | None}`` for the RealSense cameras connected now."""
    from robolearn.core.extras import install_hint

    try:
        import pyrealsense2 as rs
    except ImportError:
        return {
            "devices": [],
            "error": f"RealSense SDK not installed: {install_hint('pyrealsense2')}",
        }
    try:
        devices = list(rs.context().query_devices())
    except RuntimeError as exc:
        return {"devices": [], "error": f"RealSense SDK unavailable: {exc}"}
    return {"devices": realsense_rows(devices, with_modes), "error": None}


def realsense_rows(devices: list[Any], with_modes: bool) -> list[dict[str, Any]]:
    """One report row per ``rs.device``: its identity, and its modes when asked."""
    from robolearn.drivers.cameras.realsense import describe_device, stream_modes

    rows = []
    for device in devices:
        row: dict[str, Any] = asdict(describe_device(device))
        if with_modes:
            row["modes"] = summarize_modes(
                (f"{m.stream} {m.format}", m.width, m.height, m.fps) for m in stream_modes(device)
            )
        rows.append(row)
    return rows


def video_report(with_modes: bool, dev_dir: Path = Path("/dev")) -> dict[str, Any]:
    """``{"devices": [...], "error": None}`` for the ``videoN`` nodes under ``dev_dir``."""
    from robolearn.drivers.cameras import v4l2

    rows = []
    for path in v4l2.video_device_paths(dev_dir):
        try:
            info = asdict(v4l2.query_device(path))
        except OSError as exc:
            rows.append(_unreadable_node(path, exc))
            continue
        if with_modes and info["captures_video"]:
            info["modes"] = _v4l2_modes(v4l2, path)
        rows.append(info)
    return {"devices": rows, "error": None}


def summarize_modes(modes: Any) -> list[str]:
    """``(label, width, height, fps)`` tuples → one line per label and size with every rate,
    e.g. ``color rgb8 640x480 @ 6/15/30 fps`` (a rate of 0 means unknown, shown as ``?``)."""
    rates: dict[tuple[str, int, int], set[float]] = defaultdict(set)
    for label, width, height, fps in modes:
        rates[(label, width, height)].add(fps)
    keys = sorted(rates, key=lambda k: (k[0], k[1] * k[2], k[1]))
    return [f"{label} {w}x{h} @ {_rates(rates[(label, w, h)])} fps" for label, w, h in keys]


def _rates(fps: set[float]) -> str:
    """``6/15/30``; an unknown rate (0) shows as ``?``."""
    return "/".join(f"{r:g}" if r else "?" for r in sorted(fps))


def format_report(report: dict[str, Any]) -> str:
    """Both sections as text tables (``none found`` for an empty one)."""
    realsense, video = report["realsense"], report["video"]
    lines = ["RealSense cameras:"]
    lines += _section(realsense, REALSENSE_HEADERS, _realsense_cells)
    lines += ["", "OpenCV / V4L2 video devices:"]
    lines += _section(video, VIDEO_HEADERS, _video_cells)
    if video["devices"]:
        lines += ["(open one with its index or path; `capture: no` nodes carry metadata only)"]
    return "\n".join(lines)


def _section(part: dict[str, Any], headers: tuple[str, ...], cells: Any) -> list[str]:
    """One section's lines: its error, ``none found`` or a table with mode lines under it."""
    if part["error"]:
        return [f"  {part['error']}"]
    if not part["devices"]:
        return ["  none found"]
    lines = format_table(headers, [cells(d) for d in part["devices"]]).splitlines()
    for device in part["devices"]:
        for mode in device.get("modes", []):
            lines.append(f"  {cells(device)[0]}: {mode}")
    return lines


def _realsense_cells(device: dict[str, Any]) -> list[str]:
    keys = ("name", "serial", "firmware", "usb_type", "physical_port")
    return [str(device[key]) for key in keys]


def _video_cells(device: dict[str, Any]) -> list[str]:
    capture = "yes" if device["captures_video"] else "no"
    keys = ("path", "index", "card", "driver", "bus_info")
    return [*(str(device[key]) for key in keys), capture]


def _unreadable_node(path: Path, exc: OSError) -> dict[str, Any]:
    """A row for a node V4L2 would not describe, saying why and what to do."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, PermissionError):
        reason += " (add yourself to group 'video')"
    return {
        "path": str(path),
        "index": int(path.name[len("video") :]),
        "card": f"unreadable: {reason}",
        "driver": "?",
        "bus_info": "?",
        "captures_video": False,
    }


def _v4l2_modes(v4l2: Any, path: Path) -> list[str]:
    """A capture node's modes as summary lines (or why they could not be read)."""
    try:
        modes = v4l2.list_modes(path)
    except OSError as exc:
        return [f"modes unreadable: {exc.strerror or exc}"]
    entries = [(m.fourcc, m.width, m.height, fps) for m in modes for fps in m.fps or (0.0,)]
    return summarize_modes(entries)


COMMAND = Subcommand(
    name="find-cameras",
    help="list connected RealSense cameras and /dev/video* devices",
    config=FindCamerasConfig,
    run=run,
)
