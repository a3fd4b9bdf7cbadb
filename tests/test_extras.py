"""Hardware SDKs are extras: without them robolearn imports, lists robots and simulates, and
using a device whose SDK is missing ends in one line naming the extra to install.

Each case runs in a fresh interpreter where the SDKs cannot be imported (a meta-path finder
refuses them, as an environment without them would) — the only thing patched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from robolearn.core.extras import EXTRAS, install_hint

BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {blocked!r}
    class _NoSDK(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, _NoSDK())
    """
)


def _run(code: str, blocked: set[str] | None = None) -> subprocess.CompletedProcess[str]:
    prelude = BLOCK.format(blocked=sorted(blocked if blocked is not None else EXTRAS))
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True
    )


def test_core_paths_need_no_sdk() -> None:
    out = _run(
        """
        import robolearn.cli.main, robolearn.control, robolearn.teleop, robolearn.evaluate
        from robolearn import envs
        from robolearn.drivers import dynamixel, registry
        from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus
        import robolearn.drivers.franka
        print(len(registry.robot_names()), len(dynamixel.ARMS) > 0)
        env = envs.make("robolearn/FrankaReach-v0")
        env.reset(seed=0)
        env.step(env.action_space.sample())
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "ok"


DEVICES = {
    "pyrealsense2": "import robolearn.drivers.cameras.realsense",
    "dynamixel_sdk": (
        "from robolearn.drivers.registry import open_robot\n"
        "with open_robot('koch-follower', {'port': '/dev/null'}): pass"
    ),
    "franky": (
        "from robolearn.drivers.franka import FrankaConfig, FrankaDriver\n"
        "FrankaDriver(FrankaConfig(host='127.0.0.1')).connect()"
    ),
    "hid": "from robolearn.teleop.spacemouse import SpaceMouseTeleop\nSpaceMouseTeleop().connect()",
    "h5py": "from robolearn.data.robomimic import _h5py\n_h5py()",
    "rerun": "from robolearn.cli.view_cmd import _log_rerun\n_log_rerun(None, 0)",
}


@pytest.mark.parametrize("module", sorted(DEVICES))
def test_missing_sdk_names_its_extra(module: str) -> None:
    body = textwrap.indent(DEVICES[module], "    ")
    code = (
        "from robolearn.core.extras import MissingDependencyError\n"
        f"try:\n{body}\n"
        "except MissingDependencyError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    out = _run(code, blocked={module})
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("ERROR") and "\n" not in line, out.stdout + out.stderr
    assert install_hint(module) in line


def test_cli_without_sdk_says_one_line() -> None:
    code = """
    import sys
    from robolearn.cli.main import main
    sys.exit(main(["find-ports"]))
    """
    out = _run(code, blocked={"serial"})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "robolearn[dynamixel]" in lines[0], out.stderr


def test_find_cameras_reports_a_missing_sdk() -> None:
    code = """
    from robolearn.cli.find_cameras_cmd import realsense_report
    print(realsense_report(False)["error"])
    """
    out = _run(code, blocked={"pyrealsense2"})
    assert out.returncode == 0, out.stderr
    assert "robolearn[realsense]" in out.stdout


def _pytest_without_franky(ci: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys, pytest\nsys.exit(pytest.main({list(args)!r} + ['-p', 'no:cacheprovider']))"
    prelude = BLOCK.format(blocked=["franky", "franky_sim"])
    env = {**os.environ, "CI": ci}
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env
    )


def test_ci_fails_loudly_without_franky() -> None:
    contract = _pytest_without_franky("true", "tests/test_driver_contract.py", "-k", "spec_rates")
    assert contract.returncode == 1, contract.stdout[-2000:]
    assert "franka-franky_sim: franky-control and franky-sim are missing" in contract.stdout
    assert "1 error" in contract.stdout and "skipped" not in contract.stdout
    franka = _pytest_without_franky("true", "tests/test_franka_driver.py", "--co")
    assert franka.returncode != 0 and "pip install -e '.[dev]'" in franka.stdout


def test_developer_run_without_franky_says_what_it_left_out() -> None:
    out = _pytest_without_franky("", "tests/test_driver_contract.py", "-k", "spec_rates")
    assert out.returncode == 0, out.stdout[-2000:]
    assert "driver contract: left out franka-franky_sim" in out.stdout
    assert "franka" not in out.stdout.split("driver contract: left out")[0]
