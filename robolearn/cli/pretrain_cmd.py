"""``robolearn pretrain``: MAE pretraining of a ViT image encoder on datasets' camera frames
(:mod:`robolearn.train.pretrain`)."""

from __future__ import annotations

from robolearn.cli.common import Subcommand
from robolearn.train.pretrain_config import PretrainConfig


def run(cfg: PretrainConfig) -> int:
    """Pretrain; print where the checkpoint is, the final loss and how policies use it."""
    from robolearn.train.pretrain import pretrain

    result = pretrain(cfg)
    print(
        f"pretrained {result.steps} steps on {result.frames} frames in {result.seconds:.0f} s "
        f"({result.device}), final loss {result.final_loss:.4f}; checkpoint {result.checkpoint}"
    )
    print(
        "use it in an image policy: robolearn train ... --set "
        f'\'vision={{"backbone": "vit", "pretrained_path": "mae:{result.checkpoint}", '
        '"augment": "random_shift"}\''
    )
    return 0


COMMAND = Subcommand(
    name="pretrain",
    help="pretrain a ViT image encoder as a masked autoencoder on datasets' camera frames",
    config=PretrainConfig,
    run=run,
)
