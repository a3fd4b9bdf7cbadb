"""Shared helpers for benchmark scripts: write figures to JSON and into the README."""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    import os

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def stored(name: str, key: str = "rows") -> list[dict[str, Any]]:
    """``benchmarks/results/<name>.json``'s ``key`` list as last written (empty if none)."""
    path = RESULTS / f"{name}.json"
    return list(json.loads(path.read_text())[key]) if path.is_file() else []


def write_results(name: str, figures: dict[str, Any], markdown: str, readme: bool = True) -> Path:
    """Write ``benchmarks/results/<name>.json`` and replace the README block ``bench:<name>``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"machine": machine(), **figures}, indent=2) + "\n")
    if readme:
        _update_readme(name, markdown)
    return out


def _update_readme(name: str, markdown: str) -> None:
    path = ROOT / "README.md"
    text = path.read_text()
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text += f"\n{block}\n"
    path.write_text(text)
