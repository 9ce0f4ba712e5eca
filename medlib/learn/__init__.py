"""The torch layer: model registry, losses, the training loop and prediction.

Modules, each the one owner of its contract:

* ``models``: the registry of 2D and 3D classifiers (``build_model``, ``build_from_config``,
  ``available_models``), the multi-view network and the layers Grad-CAM and feature extraction read.
* ``weights``: weight files: torchvision's ImageNet files from the local torch hub cache and local state
  dicts (MedicalNet); nothing is ever downloaded.
* ``losses``: focal and cross-entropy + focal losses, ``build_loss`` from ``TrainConfig``.
* ``train``: ``fit`` (early stopping on validation AUC, mixed precision on CUDA, bit-identical on the CPU for a
  seed), ``train_one_epoch``, ``evaluate``, ``predict`` (the Predictions table), ``seed_everything``.
* ``checkpoints``: what ``fit`` writes after every epoch and the checks that a resume belongs to the run.
* ``ddp``: process-group helpers for DistributedDataParallel; the ``torchrun`` entry point
  (``medlib.pipelines.torchrun``) wraps the loop and is never imported by it.

The names below are the package's public face, e.g. ``from medlib.learn import build_model, fit, predict``.
"""

from medlib.learn.checkpoints import BEST_NAME, CHECKPOINT_NAME, TrainState, load_checkpoint, save_checkpoint
from medlib.learn.losses import CEFocalLoss, FocalLoss, build_loss, class_weights_from_counts
from medlib.learn.models import (MultiViewNet, VGG3D, available_models, build_from_config, build_model, check_width,
                                 default_cam_layer, get_layer, layer_output_sizes, vit_reshape_transform)
from medlib.learn.train import (EvalResult, FitResult, amp_dtype_for, evaluate, fit, predict, resolve_device,
                                seed_everything, train_one_epoch)
from medlib.learn.weights import imagenet_weights_file, load_weights, require_imagenet_weights

__all__ = [
    # models and weights
    "MultiViewNet", "VGG3D", "available_models", "build_from_config", "build_model", "check_width",
    "default_cam_layer", "get_layer", "layer_output_sizes", "vit_reshape_transform",
    "imagenet_weights_file", "load_weights", "require_imagenet_weights",
    # losses
    "CEFocalLoss", "FocalLoss", "build_loss", "class_weights_from_counts",
    # training and prediction
    "EvalResult", "FitResult", "amp_dtype_for", "evaluate", "fit", "predict", "resolve_device",
    "seed_everything", "train_one_epoch",
    # checkpoints
    "BEST_NAME", "CHECKPOINT_NAME", "TrainState", "load_checkpoint", "save_checkpoint",
]
