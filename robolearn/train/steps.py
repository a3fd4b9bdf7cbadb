"""Pieces both step loops share (imitation training, :mod:`robolearn.train.loop`; MAE
pretraining, :mod:`robolearn.train.pretrain`): Ctrl-C taken between steps, the progress bar,
and the line that says where ``--resume`` continues."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any


class DeferredInterrupt:
    """Within this context a Ctrl-C (SIGINT) only sets :attr:`requested`; the loop raises
    ``KeyboardInterrupt`` itself between steps, so an interrupt never lands inside a log
    write, a TensorBoard event or a checkpoint being saved (one that did could leave the
    process waiting on the writer's thread). A second Ctrl-C interrupts at once. Outside the
    main thread, signals cannot be handled and nothing changes."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def progress_bar(total: int, initial: int, desc: str) -> Any:
    """A tqdm bar: redrawn often on a terminal, one line every 30 s into a log file or pipe."""
    from tqdm import tqdm

    interval = 0.5 if sys.stderr.isatty() else 30.0
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        dynamic_ncols=True,
        mininterval=interval,
        maxinterval=max(interval, 10.0),
    )


def say_interrupted(step: int, total: int, last: Path) -> None:
    """Ctrl-C's last word: where the checkpoint is and where ``--resume`` continues."""
    print(
        f"\ninterrupted at step {step}/{total}: checkpoint saved in {last}; "
        f"--resume continues from step {step}",
        file=sys.stderr,
        flush=True,
    )
