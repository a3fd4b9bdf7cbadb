"""Output paths checked before any work starts: one clear error instead of a traceback later."""

from __future__ import annotations

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
