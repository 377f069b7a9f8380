"""PyTorch peer of the penalty-driven anonymizer (METHODS.md C): the same three networks and the same two minimax
steps as `anonvid.trainers.adversarial`, written the way a PyTorch user would, for a side-by-side speed benchmark
and an equivalence test.

Networks (identical to anonvid's, so that parameters copy over one to one; module names mirror anonvid's):
- f_A `UNetPlusPlus`: conv encoder (two 3×3 conv-BN-ReLU per level, 2×2 max-pool between levels), nested dense
  skip nodes C_{i,j} on `[X^{i,0..j-1}, up2(X^{i+1,j-1})]`, 1×1 head, sigmoid; input mapped to [-1, 1]; sides
  edge-padded to a multiple of 2^depth and cropped back.
- f_T `R3D`: Kinetics mean/std, optional temporal centring, 3×7×7 (or 3×3×3) stem, basic 3-D blocks (identity or
  1×1×1 projection shortcut), global mean pool, linear head.
- f_B `ContrastiveEncoder`: ResNet2D (basic or bottleneck blocks, "small" or "imagenet" stem) whose head is the
  first projection layer, ReLU, linear, L2 normalisation; `nt_xent` as anonvid's.

Convolutions pad like XLA's "SAME" (for a stride-2 3×3 conv on an even side that is 0 before and 1 after, where
`padding=1` would pad 1 on both sides and compute another function); when the padding is asymmetric the input
is padded explicitly (`F.pad`) and the convolution runs unpadded. BatchNorm: eps 1e-5, momentum 0.1 (anonvid's
0.9 decay); PyTorch updates its running variance with the unbiased batch variance where flax uses the biased
one, so running statistics drift apart by a factor n/(n − 1) per update (outputs of one step are identical).
Tensors are NCHW/NCDHW in PyTorch's channels-last memory format by default (`channels_last=False` for contiguous
NCHW).

Steps (`PenaltyPeer`), as `adversarial.make_anonymizer_step` / `make_branches_step`:
- step 1: f_A in training mode on one batch `[action frames, view 1, view 2]`, f_T and f_B in eval mode and
  without parameter gradients; loss L_T − ω·L_B + λ·max(0, RMS(x − f_A(x)) − B); Adam on f_A; a non-finite loss or
  gradient norm skips the update.
- step 2: f_A in eval mode without gradients; f_T (train mode) on CE, f_B (train mode) on NT-Xent of both views
  in one batch; two Adam optimizers.
SimCLR views: `simclr_views` — resized crop (area 0.3–1, log-uniform aspect 3/4–4/3, bilinear, no antialias),
horizontal flip, brightness/contrast/saturation jitter 0.4, greyscale with p 0.2, one draw per image, batched.
The crop resamples with `F.grid_sample` (border clamp) where anonvid uses `jax.image.scale_and_translate`, so the
two agree in cost and in distribution but not pixel for pixel; with augmentation off both pass images unchanged.

`copy_from_anonvid(module, params, batch_stats)` loads anonvid pure dicts (`nnx.to_pure_dict`).
This module imports only torch and numpy (it is a benchmark peer, not part of anonvid).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KINETICS_MEAN, KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LUMA = (0.299, 0.587, 0.114)
_RESNET_DEPTHS = {10: ("basic", (1, 1, 1, 1)), 18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                  50: ("bottleneck", (3, 4, 6, 3))}


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Module):
    """2-D or 3-D convolution with XLA "SAME" padding (asymmetric pads applied with `F.pad`)."""

    def __init__(self, cin: int, cout: int, kernel: Sequence[int], stride: Sequence[int] | int = 1,
                 bias: bool = False):
        super().__init__()
        nd = len(kernel)
        stride = (stride,) * nd if isinstance(stride, int) else tuple(stride)
        self.kernel, self.stride = tuple(kernel), stride
        conv = nn.Conv2d if nd == 2 else nn.Conv3d
        self.conv = conv(cin, cout, tuple(kernel), stride=stride, padding=0, bias=bias)
        self._cache: dict = {}

    def forward(self, x):
        spatial = tuple(x.shape[2:])
        if spatial not in self._cache:
            pads = [_same_pads(n, k, s) for n, k, s in zip(spatial, self.kernel, self.stride)]
            sym = all(lo == hi for lo, hi in pads)
            self._cache[spatial] = (sym, pads)
        sym, pads = self._cache[spatial]
        c = self.conv
        fn = F.conv2d if x.ndim == 4 else F.conv3d
        if sym:
            return fn(x, c.weight, c.bias, c.stride, tuple(lo for lo, _ in pads))
        flat = [p for lo_hi in reversed(pads) for p in lo_hi]  # F.pad wants the last axis first
        return fn(F.pad(x, flat), c.weight, c.bias, c.stride, 0)


def _bn(nd: int, c: int) -> nn.Module:
    return (nn.BatchNorm2d if nd == 2 else nn.BatchNorm3d)(c, eps=1e-5, momentum=0.1)


# ----------------------------------------------------------------------------------------------- f_A


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1, self.bn1 = SameConv(cin, cout, (3, 3)), _bn(2, cout)
        self.conv2, self.bn2 = SameConv(cout, cout, (3, 3)), _bn(2, cout)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class UNetPlusPlus(nn.Module):
    """anonvid's `UNetPlusPlus` with the "conv" encoder; images NCHW in [0, 1] → NCHW in (0, 1)."""

    def __init__(self, out_channels: int = 3, widths: Sequence[int] = (8, 16, 32), in_channels: int = 3):
        super().__init__()
        self.widths = tuple(widths)
        depth = len(widths) - 1
        self.enc = nn.ModuleList([ConvBlock(in_channels if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)])
        self.nodes = nn.ModuleList([
            nn.ModuleList([ConvBlock(j * widths[i] + widths[i + 1], widths[i]) for j in range(1, depth - i + 1)])
            for i in range(depth)])
        self.head = SameConv(widths[0], out_channels, (1, 1), bias=True)

    def forward(self, images):
        depth = len(self.widths) - 1
        h, w = images.shape[2:]
        m = 2 ** depth
        x = (images - 0.5) * 2.0
        if (-h) % m or (-w) % m:
            x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
        grid = [[self.enc[0](x)]]
        for i in range(1, depth + 1):
            grid.append([self.enc[i](F.max_pool2d(grid[i - 1][0], 2))])
        for j in range(1, depth + 1):
            for i in range(depth - j + 1):
                below = F.interpolate(grid[i + 1][j - 1], scale_factor=2, mode="nearest")
                grid[i].append(self.nodes[i][j - 1](torch.cat([*grid[i][:j], below], dim=1)))
        return torch.sigmoid(self.head(grid[0][depth]))[:, :, :h, :w]


# ----------------------------------------------------------------------------------------------- f_T


class BasicBlock(nn.Module):
    """2-D (`nd` 2, stride int) or 3-D (`nd` 3, stride triple) basic residual block."""

    def __init__(self, cin: int, cout: int, stride, nd: int):
        super().__init__()
        k = (3,) * nd
        stride = (stride,) * nd if isinstance(stride, int) else tuple(stride)
        self.conv1, self.bn1 = SameConv(cin, cout, k, stride), _bn(nd, cout)
        self.conv2, self.bn2 = SameConv(cout, cout, k), _bn(nd, cout)
        self.proj = self.proj_bn = None
        if any(s != 1 for s in stride) or cin != cout:
            self.proj, self.proj_bn = SameConv(cin, cout, (1,) * nd, stride), _bn(nd, cout)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.proj is None else self.proj_bn(self.proj(x))))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = SameConv(cin, width, (1, 1)), _bn(2, width)
        self.conv2, self.bn2 = SameConv(width, width, (3, 3), stride), _bn(2, width)
        self.conv3, self.bn3 = SameConv(width, cout, (1, 1)), _bn(2, cout)
        self.proj = self.proj_bn = None
        if stride != 1 or cin != cout:
            self.proj, self.proj_bn = SameConv(cin, cout, (1, 1), stride), _bn(2, cout)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.proj is None else self.proj_bn(self.proj(x))))


class R3D(nn.Module):
    """anonvid's `R3D`; clips NCDHW (N, 3, T, H, W) in [0, 1] → logits."""

    def __init__(self, num_classes: int, widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1), stem="kinetics",
                 stem_stride=None, temporal_stride=True, temporal_center=False):
        super().__init__()
        kernel = (3, 7, 7) if stem == "kinetics" else (3, 3, 3)
        stride = tuple(stem_stride) if stem_stride is not None else ((1, 2, 2) if stem == "kinetics" else (1, 1, 1))
        self.stem, self.stem_bn = SameConv(3, widths[0], kernel, stride), _bn(3, widths[0])
        layers, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                s = 2 if (j == 0 and i > 0) else 1
                layers.append(BasicBlock(cin, w, (s if temporal_stride else 1, s, s), 3))
                cin = w
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Linear(cin, num_classes)
        self.temporal_center = temporal_center
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)

    def features(self, x):
        h = (x - self.mean) / self.std
        if self.temporal_center:
            h = h - h.mean(dim=2, keepdim=True)
        h = F.relu(self.stem_bn(self.stem(h)))
        for block in self.blocks:
            h = block(h)
        return h.mean(dim=(2, 3, 4))

    def forward(self, x):
        return self.head(self.features(x))


# ----------------------------------------------------------------------------------------------- f_B


class ResNet2D(nn.Module):
    """anonvid's `ResNet2D` on images NCHW in [0, 1] (the per-image path: head on pooled features)."""

    def __init__(self, num_outputs: int, depth=18, width=64, stem="imagenet", stem_stride=1):
        super().__init__()
        kind, blocks = _RESNET_DEPTHS[depth]
        self.stem_kind = stem
        self.stem = SameConv(3, width, (7, 7) if stem == "imagenet" else (3, 3), 2 if stem == "imagenet" else
                             int(stem_stride))
        self.stem_bn = _bn(2, width)
        layers, cin = [], width
        for i, n in enumerate(blocks):
            w = width * 2 ** i
            for j in range(n):
                s = 2 if (j == 0 and i > 0) else 1
                if kind == "basic":
                    layers.append(BasicBlock(cin, w, s, 2))
                    cin = w
                else:
                    layers.append(Bottleneck(cin, w, s))
                    cin = w * 4
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Linear(cin, num_outputs)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem((x - self.mean) / self.std)))
        if self.stem_kind == "imagenet":  # XLA "SAME" 3×3/2 max-pool: pad with -inf, 0 before and 1 after on even sides
            ph, pw = _same_pads(x.shape[2], 3, 2), _same_pads(x.shape[3], 3, 2)
            x = F.max_pool2d(F.pad(x, (*pw, *ph), value=-math.inf), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


class ContrastiveEncoder(nn.Module):
    """anonvid's `ContrastiveEncoder`: unit-norm embeddings of images NCHW in [0, 1]."""

    def __init__(self, proj_dim=128, proj_hidden=2048, depth=50, width=64, stem="imagenet", stem_stride=1):
        super().__init__()
        self.backbone = ResNet2D(proj_hidden, depth=depth, width=width, stem=stem, stem_stride=stem_stride)
        self.proj = nn.Linear(proj_hidden, proj_dim)

    def forward(self, images):
        return F.normalize(self.proj(F.relu(self.backbone(images))), dim=-1, eps=1e-12)


def nt_xent(z1, z2, temperature: float = 0.1):
    """NT-Xent (SimCLR) of two (N, D) views of unit-norm embeddings, as `anonvid.models.contrastive.nt_xent`."""
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf)
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, positive)


# ----------------------------------------------------------------------------------------------- views


def simclr_views(images, *, crop_scale=(0.3, 1.0), crop_ratio=(3 / 4, 4 / 3), flip=True, jitter=0.4,
                 grey_prob=0.2, generator=None):
    """One augmented view of images NCHW in [0, 1], one random draw per image (see the module docstring)."""
    n, _, h, w = images.shape
    x = images
    if crop_scale != (1.0, 1.0) or crop_ratio != (1.0, 1.0):
        def uniform(lo, hi):
            return torch.rand(n, generator=generator) * (hi - lo) + lo

        area = uniform(*crop_scale)
        ratio = torch.exp(uniform(math.log(crop_ratio[0]), math.log(crop_ratio[1])))
        ch = torch.clamp(torch.sqrt(area / ratio) * h, 1.0, h)
        cw = torch.clamp(torch.sqrt(area * ratio) * w, 1.0, w)
        y0 = torch.rand(n, generator=generator) * (h - ch)
        x0 = torch.rand(n, generator=generator) * (w - cw)
        theta = torch.zeros(n, 2, 3)  # normalised output coords [-1, 1] → normalised input coords of the crop
        theta[:, 0, 0] = cw / w
        theta[:, 0, 2] = (2 * x0 + cw) / w - 1
        theta[:, 1, 1] = ch / h
        theta[:, 1, 2] = (2 * y0 + ch) / h - 1
        if flip:  # a flip is the crop's x axis reversed: free inside the same resampling
            sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
            theta[:, 0, 0] *= sign
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    elif flip:
        x = torch.where((torch.rand(n, generator=generator) < 0.5).view(n, 1, 1, 1), x.flip(3), x)
    luma = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    if jitter > 0:
        b, c, s = (torch.rand(3, n, generator=generator) * 2 * jitter + 1 - jitter).view(3, n, 1, 1, 1)
        x = x * b
        mean = (x * luma).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
        x = (x - mean) * c + mean
        grey = (x * luma).sum(1, keepdim=True)
        x = torch.clamp(grey + (x - grey) * s, 0.0, 1.0)
    if grey_prob > 0:
        grey = (x * luma).sum(1, keepdim=True).expand_as(x)
        x = torch.where((torch.rand(n, generator=generator) < grey_prob).view(n, 1, 1, 1), grey, x)
    return torch.clamp(x, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------- the minimax


class PenaltyPeer:
    """The three networks, their Adam optimizers and the two minimax steps.

    Args:
      num_classes: action classes.
      anonymizer, action, privacy: the model kwargs of `adversarial.default_config()` sections (`model.kwargs`;
        `privacy` also takes `proj_dim`).
      lrs: Adam learning rates per network (f_A 4e-5, f_T and f_B 1e-4).
      budget, weight, omega, temperature: B, λ, ω, the NT-Xent temperature.
      augment: SimCLR view settings for `simclr_views` (None = no augmentation: views are the images).
      channels_last: channels-last memory format for activations and conv weights.
    """

    def __init__(self, num_classes: int, *, anonymizer: Mapping[str, Any], action: Mapping[str, Any],
                 privacy: Mapping[str, Any], lrs=(4e-5, 1e-4, 1e-4), budget=0.3, weight=1.0, omega=1.0,
                 temperature=0.1, augment: Mapping[str, Any] | None = None, channels_last: bool = True, seed=0):
        a = {k: v for k, v in anonymizer.items() if k not in ("encoder", "resnet_blocks")}
        if anonymizer.get("encoder", "conv") != "conv":
            raise ValueError("the torch peer implements the UNet++ 'conv' encoder only")
        p = dict(privacy)
        self.f_a = UNetPlusPlus(3, **a)
        self.f_t = R3D(num_classes, **action)
        self.f_b = ContrastiveEncoder(int(p.pop("proj_dim", 128)), **p)
        self.channels_last = channels_last
        if channels_last:
            for m in (self.f_a, self.f_b):
                m.to(memory_format=torch.channels_last)
            self.f_t.to(memory_format=torch.channels_last_3d)
        self.opts = [torch.optim.Adam(m.parameters(), lr=lr) for m, lr in zip(self.nets, lrs)]
        self.budget, self.weight, self.omega, self.temperature = budget, weight, omega, temperature
        self.augment = None if augment is None else dict(augment)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def nets(self):
        return (self.f_a, self.f_t, self.f_b)

    # channels-last numpy (N, [T,] H, W, 3) → torch NCHW / NCDHW views in channels-last memory (no copy)
    def images(self, a) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(a))
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.permute(0, 3, 1, 2) if self.channels_last else x.permute(0, 3, 1, 2).contiguous()

    def clips(self, a) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(a))
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.permute(0, 4, 1, 2, 3) if self.channels_last else x.permute(0, 4, 1, 2, 3).contiguous()

    def _frames(self, clips):  # (B, 3, T, H, W) → (B·T, 3, H, W)
        b, c, t, h, w = clips.shape
        return clips.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    def _unframe(self, frames, b, t):  # (B·T, 3, H, W) → (B, 3, T, H, W)
        return frames.reshape(b, t, *frames.shape[1:]).permute(0, 2, 1, 3, 4)

    def views(self, images):
        if self.augment is None:
            return images, images
        return (simclr_views(images, generator=self.generator, **self.augment),
                simclr_views(images, generator=self.generator, **self.augment))

    def anonymizer_step(self, clips, labels, images) -> dict[str, float]:
        """Step 1 on torch tensors from `clips()` / `images()`; returns the loss terms (before the update)."""
        self.f_a.train()
        self.f_t.eval()
        self.f_b.eval()
        for m in (self.f_t, self.f_b):
            m.requires_grad_(False)
        self.f_a.requires_grad_(True)
        b, _, t = clips.shape[:3]
        v1, v2 = self.views(images)
        n = v1.shape[0]
        x = self._frames(clips)
        out = self.f_a(torch.cat([x, v1, v2]))
        xa = self._unframe(out[:b * t], b, t)
        ce = F.cross_entropy(self.f_t(xa), labels)
        ntx = nt_xent(self.f_b(out[b * t:b * t + n]), self.f_b(out[b * t + n:]), self.temperature)
        dist = torch.sqrt(torch.mean((x - out[:b * t]) ** 2) + 1e-12)
        pen = self.weight * F.relu(dist - self.budget)
        loss = ce - self.omega * ntx + pen
        opt = self.opts[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.f_a.parameters(), math.inf)
        if torch.isfinite(loss) and torch.isfinite(grad_norm):
            opt.step()
        return {"loss": loss.item(), "action_loss": ce.item(), "privacy_loss": ntx.item(), "penalty": pen.item(),
                "distance": dist.item(), "grad_norm": grad_norm.item()}

    def branches_step(self, clips, labels, images) -> dict[str, float]:
        """Step 2: f_T on CE and f_B on NT-Xent of anonymized inputs, f_A frozen in eval mode."""
        self.f_a.eval()
        b, _, t = clips.shape[:3]
        v1, v2 = self.views(images)
        n = v1.shape[0]
        with torch.no_grad():
            xa = self._unframe(self.f_a(self._frames(clips)), b, t)
            views_a = self.f_a(torch.cat([v1, v2]))
        if self.channels_last:
            xa = xa.contiguous(memory_format=torch.channels_last_3d)
        metrics = {}
        for net, opt, loss_fn in (
                (self.f_t, self.opts[1], lambda: F.cross_entropy(self.f_t(xa), labels)),
                (self.f_b, self.opts[2], lambda: nt_xent(*self.f_b(views_a).split(n), self.temperature))):
            net.train()
            net.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), math.inf)
            if torch.isfinite(loss) and torch.isfinite(grad_norm):
                opt.step()
            metrics["action_loss" if net is self.f_t else "privacy_loss"] = loss.item()
        return metrics


# ----------------------------------------------------------------------------------------------- weights


def _merge_dicts(a: Mapping, b: Mapping) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge_dicts(out[k], v) if k in out and isinstance(v, Mapping) else v
    return out


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


@torch.no_grad()
def _copy(module: nn.Module, tree: Mapping) -> None:
    if isinstance(module, SameConv):
        k = _t(tree["kernel"])  # (*spatial, cin, cout) → (cout, cin, *spatial)
        module.conv.weight.copy_(k.permute(k.ndim - 1, k.ndim - 2, *range(k.ndim - 2)))
        if "bias" in tree:
            module.conv.bias.copy_(_t(tree["bias"]))
        return
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        for ours, theirs in (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"),
                             ("running_var", "var")):
            if theirs in tree:
                getattr(module, ours).copy_(_t(tree[theirs]))
        return
    if isinstance(module, nn.Linear):
        module.weight.copy_(_t(tree["kernel"]).T)
        module.bias.copy_(_t(tree["bias"]))
        return
    for key, sub in tree.items():
        child = module[int(key)] if isinstance(module, nn.ModuleList) else getattr(module, str(key))
        if child is None:
            raise KeyError(f"{type(module).__name__} has no submodule {key!r} for the anonvid parameters")
        _copy(child, sub)


def copy_from_anonvid(module: nn.Module, params: Mapping, batch_stats: Mapping | None = None) -> None:
    """Loads anonvid pure dicts (`nnx.to_pure_dict` of the Param and BatchStat states) into a peer network.

    `copy_` keeps each destination's strides, so channels-last weights stay channels-last.
    """
    _copy(module, _merge_dicts(params, batch_stats or {}))
