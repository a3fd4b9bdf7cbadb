"""The installed package: one ``robolearn`` namespace, beside other people's top-level packages.

``envs``, ``drivers``, ``policies`` and ``teleop`` are names of PyPI distributions; robolearn's
folders of those names install as ``robolearn.envs`` and so on, and never as top-level
packages. These tests build the real wheel with setuptools and install it with pip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("envs", "drivers", "policies", "teleop")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*cmd, "-w", str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("robolearn-*.whl"))


def _source_packages() -> set[str]:
    """Every package of the checkout as it installs (robolearn/envs -> ../envs and so on)."""
    found = set()
    for folder, _, files in os.walk(ROOT / "robolearn", followlinks=True):
        if "__init__.py" in files:
            found.add(".".join(Path(folder).relative_to(ROOT).parts))
    return found


def test_checkout_links_the_folders_into_the_namespace() -> None:
    for name in SUBPACKAGES:
        link = ROOT / "robolearn" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve()


def test_wheel_holds_only_the_robolearn_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "robolearn",
        wheel.name.split("-py")[0] + ".dist-info",
    }
    packages = {".".join(n.split("/")[:-1]) for n in names if n.endswith("/__init__.py")}
    assert packages == _source_packages()
    assert {f"robolearn/{p}/py.typed" for p in SUBPACKAGES} <= set(names)
    top_level = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["robolearn"]


def test_install_beside_top_level_envs_and_policies(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    theirs = {}
    for name in ("envs", "policies"):  # stand-ins for the PyPI distributions of these names
        (target / name).mkdir(parents=True)
        theirs[name] = f"MARK = 'the {name} distribution'\n"
        (target / name / "__init__.py").write_text(theirs[name])
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
    subprocess.run([*pip, "--target", str(target), str(wheel)], check=True, capture_output=True)
    for name, text in theirs.items():
        assert (target / name / "__init__.py").read_text() == text
    code = (
        "import envs, policies, robolearn.envs, robolearn.policies\n"
        "print(envs.MARK); print(policies.MARK)\n"
        "print(robolearn.envs.__file__); print(robolearn.policies.__file__)\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "MUJOCO_GL": "egl"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[:2] == ["the envs distribution", "the policies distribution"]
    assert all(line.startswith(str(target / "robolearn")) for line in lines[2:4])


def test_no_top_level_package_outside_the_checkout(tmp_path: Path) -> None:
    """The installed robolearn does not put ``envs`` etc. on the path."""
    code = "import importlib.util as u; print([u.find_spec(n) for n in ('envs', 'teleop')])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[None, None]"
