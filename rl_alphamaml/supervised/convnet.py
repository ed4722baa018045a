"""The 4-block convolutional network of MAML's few-shot image experiments [1].

The architecture goes back to the Matching Networks of Vinyals et al. [2]: four blocks of
``3×3 conv (64 filters) → batch norm → ReLU → downsample``, then a linear layer to N classes.
MAML's Omniglot model downsamples with **stride-2 convolutions** (no max-pooling; max-pooling was its
MiniImagenet choice) and averages the last feature map over space before the linear layer
(``maml.py: forward_conv``, ``tf.reduce_mean(hidden4, [1, 2])``): 28 → 14 → 7 → 4 → 2 → 64 features.
``downsample="maxpool"`` gives the Vinyals / Snell-style variant (stride-1 conv, 2×2 max-pool):
28 → 14 → 7 → 3 → 1 → 64 features. Either way the head sees 64 features.

Batch norm and functional fast weights
--------------------------------------
MAML normalises with the statistics of the batch at hand, in training and at test time alike: the
support set during adaptation, the query set for the meta-loss (``tf.contrib.layers.batch_norm`` in
its default training mode). That is the default here, ``track_running_stats=False``: the module has no
buffers, its output never depends on ``train()``/``eval()``, and the whole state for
``torch.func.functional_call`` is the parameter dictionary. Running averages would mix statistics of
different tasks and of weights before and after adaptation, which fit none of them (Antoniou et al. [3]
argue for per-step statistics instead).

``track_running_stats=True`` is offered for comparison: then each norm layer has ``running_mean``,
``running_var`` and ``num_batches_tracked`` buffers, updated in place by forward passes in training
mode and used in eval mode. Under ``functional_call`` pass the buffers explicitly (clones, if the
module's own must stay unchanged) — a buffer left out of the dictionary is the module's own and gets
updated.

Differences from MAML's TensorFlow model, kept deliberately: PyTorch pads 3×3 stride-2 convolutions
symmetrically (TF ``SAME`` pads the bottom/right only for even inputs), and batch norm has a learned
scale as well as a shift (TF's default ``scale=False`` learns only the shift).

Example::

    import torch
    from torch.func import functional_call
    from rl_alphamaml.supervised.convnet import ConvNet

    net = ConvNet(n_way=5)                          # MAML Omniglot: strided, batch statistics
    params = dict(net.named_parameters())
    logits = functional_call(net, params, (torch.rand(25, 1, 28, 28),))   # (25, 5)

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot Learning",
        NeurIPS 2016. https://arxiv.org/abs/1606.04080
    [3] Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019.
        https://arxiv.org/abs/1810.09502
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvBlock", "ConvNet", "Downsample", "Init"]

Downsample = Literal["stride", "maxpool"]
Init = Literal["maml", "pytorch"]


class ConvBlock(nn.Module):
    """``3×3 conv → BatchNorm2d → ReLU``, downsampling ×2 by the conv's stride or by a 2×2 max-pool."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        downsample: Downsample = "stride",
        track_running_stats: bool = False,
    ) -> None:
        super().__init__()
        if downsample not in ("stride", "maxpool"):
            raise ValueError(f"downsample must be 'stride' or 'maxpool', got {downsample!r}")
        stride = 2 if downsample == "stride" else 1
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.norm = nn.BatchNorm2d(out_channels, track_running_stats=track_running_stats)
        self.pool: nn.Module = nn.MaxPool2d(2) if downsample == "maxpool" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.norm(self.conv(x))))


class ConvNet(nn.Module):
    """The MAML / Matching Networks 4-block conv net for few-shot image classification.

    MAML [1, §5.2]; the architecture of Vinyals et al. [2].

    Args:
        n_way: output classes (N of the N-way task).
        in_channels: image channels (1 for Omniglot).
        hidden_channels: filters per conv layer (64).
        num_blocks: conv blocks (4).
        downsample: ``"stride"`` (stride-2 convs, MAML's Omniglot model; default) or ``"maxpool"``
            (stride-1 convs followed by 2×2 max-pooling).
        track_running_stats: keep batch-norm running averages (buffers). Default ``False``: batch
            statistics always, as in MAML (see the module docstring).
        init: ``"maml"`` — Xavier-uniform conv weights, zero biases, head weights from N(0, 1) and zero
            head bias, as MAML's Omniglot code; ``"pytorch"`` — PyTorch's default initialisation.

    Input ``(B, in_channels, H, W)``, output logits ``(B, n_way)``. Parameter names:
    ``blocks.{i}.conv.weight|bias``, ``blocks.{i}.norm.weight|bias``, ``head.weight|bias``.

    Example::

        net = ConvNet(n_way=5)
        logits = net(torch.rand(80, 1, 28, 28))      # (80, 5)
    """

    def __init__(
        self,
        n_way: int,
        *,
        in_channels: int = 1,
        hidden_channels: int = 64,
        num_blocks: int = 4,
        downsample: Downsample = "stride",
        track_running_stats: bool = False,
        init: Init = "maml",
    ) -> None:
        super().__init__()
        if n_way < 1 or in_channels < 1 or hidden_channels < 1 or num_blocks < 1:
            raise ValueError("n_way, in_channels, hidden_channels and num_blocks must be positive")
        if init not in ("maml", "pytorch"):
            raise ValueError(f"init must be 'maml' or 'pytorch', got {init!r}")
        self.n_way = n_way
        self.downsample = downsample
        self.track_running_stats = track_running_stats
        chans = [in_channels] + [hidden_channels] * num_blocks
        self.blocks = nn.Sequential(
            *(
                ConvBlock(c_in, c_out, downsample=downsample, track_running_stats=track_running_stats)
                for c_in, c_out in itertools.pairwise(chans)
            )
        )
        self.head = nn.Linear(hidden_channels, n_way)
        if init == "maml":
            self.reset_parameters_maml()

    @torch.no_grad()
    def reset_parameters_maml(self) -> None:
        """MAML's initialisation (``maml.py: construct_conv_weights``)."""
        for block in self.blocks:
            assert isinstance(block, ConvBlock)
            nn.init.xavier_uniform_(block.conv.weight)
            if block.conv.bias is not None:
                nn.init.zeros_(block.conv.bias)
            block.norm.reset_parameters()
        nn.init.normal_(self.head.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``hidden_channels`` features: conv blocks, then the mean over the remaining space."""
        return self.blocks(x).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @staticmethod
    def output_size(image_size: int, num_blocks: int = 4, downsample: Downsample = "stride") -> int:
        """Side of the last feature map for a square input (28 → 2 strided, 28 → 1 max-pooled)."""
        s = image_size
        for _ in range(num_blocks):
            s = math.ceil(s / 2) if downsample == "stride" else s // 2
        return s


def forward_tasks(net: ConvNet, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """Logits ``(T, B, n_way)`` of ``T`` tasks at once, each with its own weights.

    ``params`` are ``net``'s parameters with a leading task dimension ``T`` (:func:`expand_params`, or
    adapted fast weights), ``x`` is ``(T, B, C, H, W)``. The tasks are laid side by side along the
    channels, ``(B, T·C, H, W)``, so each convolution is one grouped convolution (``groups=T``) and each
    batch norm one ``F.batch_norm`` whose ``T·C`` channels are normalised over the ``B·H·W`` values of
    their own task — the statistics a per-task ``functional_call`` computes. Equal to
    ``torch.func.vmap`` of ``functional_call(net, …)`` and to a loop over tasks (float64 tests), and
    faster than ``vmap`` on CPU.
    """
    if net.track_running_stats:
        raise ValueError("forward_tasks needs a ConvNet with batch statistics (track_running_stats=False)")
    T, B = x.shape[:2]
    h = x.transpose(0, 1).reshape(B, T * x.shape[2], *x.shape[3:])
    for i, block in enumerate(net.blocks):
        assert isinstance(block, ConvBlock)
        conv, norm = block.conv, block.norm
        w = params[f"blocks.{i}.conv.weight"]
        b = params.get(f"blocks.{i}.conv.bias")
        h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                     stride=conv.stride, padding=conv.padding, groups=T)
        h = F.batch_norm(h, None, None, params[f"blocks.{i}.norm.weight"].reshape(-1),
                         params[f"blocks.{i}.norm.bias"].reshape(-1), training=True, eps=norm.eps)
        h = torch.relu(h)
        if isinstance(block.pool, torch.nn.MaxPool2d):
            h = F.max_pool2d(h, 2)
    features = h.mean(dim=(-2, -1)).reshape(B, T, -1).transpose(0, 1)  # (T, B, hidden)
    return torch.baddbmm(params["head.bias"].unsqueeze(1), features, params["head.weight"].transpose(1, 2))
