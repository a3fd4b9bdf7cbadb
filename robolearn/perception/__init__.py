"""Observations → tensors: normalization, augmentation, image and point-cloud encoders, fusion.

* :class:`Normalizer` — per-feature normalization from dataset statistics
  (defined in :mod:`robolearn.perception.normalize`, re-exported here);
* :class:`ImageAugment` — random crop / random shift (train), centre crop (eval);
* :class:`ResNet18Encoder`, :class:`ViTEncoder`, :class:`SpatialSoftmax` — image encoders;
* :func:`depth_to_point_cloud`, :func:`sample_points`, :class:`PointNetEncoder` — depth;
* :class:`ObservationEncoder` with :class:`ObsEncoderConfig` — every camera and the
  proprioception of a frame → one feature vector, for (B, …) or (B, T, …) batches;
* :class:`MAEModel` with :class:`MAEConfig` — masked-autoencoder pretraining of the ViT
  (:mod:`robolearn.perception.mae`), whose encoder policies use as ``pretrained_path="mae:…"``.

Nothing here downloads weights: pretrained backbones load from local files only.
"""

from robolearn.perception.augment import AUGMENT_MODES, AugmentMode, ImageAugment
from robolearn.perception.encoders import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNetNormalize,
    ResNet18Config,
    ResNet18Encoder,
    SpatialSoftmax,
    ViTConfig,
    ViTEncoder,
    load_state_dict_file,
    replace_batchnorm_with_groupnorm,
)
from robolearn.perception.fusion import ObsEncoderConfig, ObservationEncoder
from robolearn.perception.mae import MAEConfig, MAEModel
from robolearn.perception.normalize import NORM_MODES, Normalizer, NormMode
from robolearn.perception.pointcloud import (
    PointNetEncoder,
    depth_to_point_cloud,
    pinhole_for_image,
    sample_points,
)

__all__ = [
    "AUGMENT_MODES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NORM_MODES",
    "AugmentMode",
    "ImageAugment",
    "ImageNetNormalize",
    "MAEConfig",
    "MAEModel",
    "NormMode",
    "Normalizer",
    "ObsEncoderConfig",
    "ObservationEncoder",
    "PointNetEncoder",
    "ResNet18Config",
    "ResNet18Encoder",
    "SpatialSoftmax",
    "ViTConfig",
    "ViTEncoder",
    "depth_to_point_cloud",
    "load_state_dict_file",
    "pinhole_for_image",
    "replace_batchnorm_with_groupnorm",
    "sample_points",
]
