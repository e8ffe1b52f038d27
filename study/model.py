"""One CNN builder for every variant the study compares; the default is the seed's Q1 network.

    python -m study.inspect model    # prints the seed network (720,545 parameters) and the default recipe's

Seed network (Keras, input 200x200x1): 4 x [Conv 3x3, 32 filters, 'same', ReLU, MaxPool 2x2
rounding up] (200->100->50->25->13 px) -> Flatten (5408) -> Dense 128 ReLU -> Dense 1 (sigmoid
applied by the loss / at prediction). `num_classes=3` swaps the last layer for 3 logits (softmax).

The layers a trial may add (`extra_layers`, in any combination; repeats allowed), and why:
  conv       one more [Conv 3x3, ReLU, MaxPool] block after the last one: more receptive field for
             diffuse opacities, and it halves the flattened map (13->7 px at 200 px input), which
             cuts the dense layer from 692k to 201k weights, the main overfitting risk here.
  dense      one more hidden Dense layer (dense_units // 2, ReLU) before the output: a deeper
             classifier on the same features, cheap in compute.
  batchnorm  BatchNorm2d after the conv of the next un-normalised block (first, then second...):
             exposure and contrast differ a lot between X-ray machines; normalising activations
             steadies training and tolerates larger learning rates.
  dropout    Dropout after Flatten with p = `dropout` (0.5 when `dropout` is 0): regularises the
             widest layer, where nearly all the parameters are.
`dropout` > 0 also places Dropout(p) by `dropout_place`: before the output layer ("dense"),
after every conv block ("conv"), or both. `norm="batch"` puts BatchNorm2d after every convolution
(added blocks included; `batchnorm` in extra_layers then adds nothing): part of the training
recipe the generalization question compares, for the same exposure reason as `batchnorm`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from study.config import TrainConfig


def build_model(cfg: TrainConfig) -> nn.Sequential:
    extras = list(cfg.extra_layers)
    filters = list(cfg.filters) + [cfg.filters[-1]] * extras.count("conv")
    kernels = list(cfg.kernel_sizes) + [3] * extras.count("conv")
    n_bn = len(filters) if cfg.norm == "batch" else extras.count("batchnorm")
    conv_dropout = cfg.dropout if cfg.dropout > 0 and cfg.dropout_place in ("conv", "both") else 0.0

    layers: list[nn.Module] = []
    in_ch, side = 1, cfg.resolution
    for i, (f, k) in enumerate(zip(filters, kernels)):
        layers.append(nn.Conv2d(in_ch, f, k, padding=k // 2))
        if i < n_bn:
            layers.append(nn.BatchNorm2d(f))
        # MaxPool before ReLU: max and ReLU commute (both monotone), so outputs and gradients are
        # bit-identical to the seed's Conv-ReLU-Pool, but ReLU then touches 1/4 of the activations
        # (fp32 CPU, 200 px: 49 -> 60 images/s, BENCHMARKS.md). Keras 'same' pooling rounds up.
        layers += [nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(inplace=True)]
        if conv_dropout:
            layers.append(nn.Dropout(conv_dropout))
        in_ch, side = f, math.ceil(side / 2)
    layers.append(nn.Flatten())
    width = in_ch * side * side
    for _ in range(extras.count("dropout")):
        layers.append(nn.Dropout(cfg.dropout or 0.5))
    layers += [nn.Linear(width, cfg.dense_units), nn.ReLU(inplace=True)]
    width = cfg.dense_units
    for _ in range(extras.count("dense")):
        layers += [nn.Linear(width, max(8, width // 2)), nn.ReLU(inplace=True)]
        width = max(8, width // 2)
    if cfg.dropout > 0 and cfg.dropout_place in ("dense", "both"):
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(width, 1 if cfg.num_classes == 2 else cfg.num_classes))
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def probabilities(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[N] pneumonia probability (binary) or [N, 3] class probabilities."""
    return torch.sigmoid(logits.float().squeeze(1)) if num_classes == 2 else torch.softmax(logits.float(), dim=1)
