"""Output paths checked before any work starts: one clear error instead of a traceback later."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from robolearn.core.types import ConfigError


def require_folder(path: Path, flag: str = "--out") -> Path:
    """``path`` when it is a folder or does not exist yet; ConfigError when it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; give a folder (it is created if missing)")
    return path


def require_mp4(path: Path, flag: str = "--out") -> Path:
    """``path`` when it names an ``.mp4`` file that can be written; ConfigError otherwise."""
    path = Path(path)
    if path.suffix.lower() != ".mp4" or path.is_dir():
        raise ConfigError(f"{flag} {path} must be an .mp4 file path, e.g. {flag} episode.mp4")
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{flag} {path}: {path.parent} is a file, not a folder")
    return path


def require_positive(flag: str, value: float | None, allow_zero: bool = False) -> None:
    """ConfigError unless ``value`` (when given) is > 0 (or >= 0 with ``allow_zero``)."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{flag} must be {bound}, got {value:g}")


def write_folder_atomically(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill ``folder`` through ``write(tmp)``, which writes into a temporary sibling that is then
    renamed into place: a crash while writing never leaves a half-written ``folder``, and an
    existing ``folder`` is swapped out only once the new one is whole. Returns ``folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        _replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is swapped out only once ``src`` is whole."""
    if not dst.exists():
        os.replace(src, dst)
        return
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)
