"""PyTorch peer of `anonvid.models.dual_vit.DualViT`: the same architecture and pruning, written the way a PyTorch
user would (timm-style modules), for side-by-side speed benchmarks and an equivalence test.

Architecture (METHODS.md A), identical to anonvid's so that parameters copy over one to one:
- clips `(B, T, H, W, 3)` in [0, 1] (channels last, like anonvid), normalised by the pixel mean/std;
- tubelet embedding = patchify into non-overlapping (t, p, q) tubelets (time-major) + one linear layer;
- sequence `[act_CLS, priv_CLS, tubelets] + learned position embedding`;
- pre-LN blocks (LayerNorm eps 1e-6): explicit softmax attention with QKV bias, exact GELU MLP, stochastic depth
  with a linear schedule;
- pruning blocks (1-indexed): after the attention residual and before the MLP, score every tubelet by
  α_act − λ_priv·α_priv (head-mean post-softmax CLS rows over the tubelet columns, each L1-normalised), keep the
  top ceil(keep_rate·n) in their original order, and (EViT fusion) merge the dropped tokens, plus any previous
  fused token, into one token at the end of the sequence, weighted by the action CLS's head-mean attention;
- final LayerNorm; CLS 0 → action head, CLS 1 → privacy head.

`copy_from_anonvid` loads an anonvid parameter tree (`nnx.to_pure_dict(nnx.state(model, nnx.Param))`).
This module imports only torch and numpy (it is a benchmark peer, not part of anonvid).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

NUM_CLS = 2
_CEIL_SLACK = 1e-9  # as anonvid.pruning.keep_count: 0.7·10 keeps 7, not 8


def keep_count(n: int, rate: float) -> int:
    return max(1, math.ceil(rate * n - _CEIL_SLACK))


class Block(nn.Module):
    """Pre-LN transformer block with explicit softmax attention (timm's `Attention` layout)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf)
        self.fc2 = nn.Linear(hidden, dim)
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out), attn

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    if not training or rate == 0.0:
        return x
    keep = x.new_empty((x.shape[0], 1, 1)).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


class TorchDualViT(nn.Module):
    """The dual-token video ViT with attention-driven tubelet pruning, in PyTorch.

    Args:
      num_classes, num_attributes: head sizes.
      dim, depth, num_heads, mlp_ratio, qkv_bias: transformer shape.
      tubelet: (t, p, q); num_frames, image_size: clip size (T, (H, W)).
      prune_blocks: 1-indexed pruning blocks; keep_rates: one per pruning block.
      lambda_priv: λ_priv of the score; fuse: EViT fusion; drop_path_rate: stochastic depth of the last block.
      pixel_mean, pixel_std: input normalisation of [0, 1] pixels.
    """

    def __init__(self, num_classes: int, *, num_attributes: int = 5, dim: int = 384, depth: int = 12,
                 num_heads: int = 6, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 tubelet: Sequence[int] = (2, 16, 16), num_frames: int = 16, image_size: Sequence[int] = (224, 224),
                 prune_blocks: Sequence[int] = (3, 6, 9), keep_rates: Sequence[float] = (0.9, 0.9, 0.9),
                 lambda_priv: float = 0.5, fuse: bool = True, drop_path_rate: float = 0.0,
                 pixel_mean: Sequence[float] = (0.485, 0.456, 0.406),
                 pixel_std: Sequence[float] = (0.229, 0.224, 0.225)):
        super().__init__()
        self.tubelet = tuple(int(v) for v in tubelet)
        self.grid = (num_frames // self.tubelet[0], image_size[0] // self.tubelet[1],
                     image_size[1] // self.tubelet[2])
        self.num_tubelets = math.prod(self.grid)
        self.dim, self.depth = dim, depth
        self.prune_blocks, self.keep_rates = tuple(prune_blocks), tuple(keep_rates)
        self.lambda_priv, self.fuse, self.drop_path_rate = float(lambda_priv), bool(fuse), float(drop_path_rate)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32), persistent=False)
        self.embed = nn.Linear(math.prod(self.tubelet) * 3, dim)
        self.cls_tokens = nn.Parameter(torch.zeros(1, NUM_CLS, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, NUM_CLS + self.num_tubelets, dim))
        self.blocks = nn.ModuleList([Block(dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.action_head = nn.Linear(dim, num_classes)
        self.privacy_head = nn.Linear(dim, num_attributes)
        for p in self.parameters():
            if p.ndim > 1:
                nn.init.trunc_normal_(p, std=0.02)

    @classmethod
    def from_config(cls, cfg: Any, **overrides) -> TorchDualViT:
        """Builds the peer of an anonvid `DualViTConfig` (any object with the same field names)."""
        names = ("num_attributes", "dim", "depth", "num_heads", "mlp_ratio", "qkv_bias", "tubelet", "num_frames",
                 "image_size", "prune_blocks", "keep_rates", "lambda_priv", "fuse", "drop_path_rate", "pixel_mean",
                 "pixel_std")
        if getattr(cfg, "temporal_strict", False):
            raise NotImplementedError("the torch peer implements per-tubelet top-k only (temporal_strict=False)")
        if getattr(cfg, "motion_input", False):
            raise NotImplementedError("the torch peer embeds RGB only (motion_input=False)")
        kwargs = {name: getattr(cfg, name) for name in names}
        kwargs.update(overrides)
        return cls(cfg.num_classes, **kwargs)

    def embed_tokens(self, clips: torch.Tensor) -> torch.Tensor:
        (t, p, q), (b, tt, hh, ww, c) = self.tubelet, clips.shape
        x = (clips - self.pixel_mean) / self.pixel_std
        x = x.reshape(b, tt // t, t, hh // p, p, ww // q, q, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        x = self.embed(x.reshape(b, self.num_tubelets, t * p * q * c))  # time-major tubelet tokens
        cls = self.cls_tokens.expand(b, -1, -1)
        return torch.cat([cls, x], dim=1) + self.pos_embed

    def forward(self, clips: torch.Tensor, keep_rates: Sequence[float] | None = None,
                fuse: bool | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Returns `({"action": logits, "privacy": logits}, kept global tubelet ids (B, K) ascending)`."""
        rates = dict(zip(self.prune_blocks, self.keep_rates if keep_rates is None else keep_rates))
        fuse = self.fuse if fuse is None else fuse
        x = self.embed_tokens(clips)
        b = x.shape[0]
        ids = torch.arange(self.num_tubelets, device=x.device).expand(b, -1)
        num_fused = 0
        for i, block in enumerate(self.blocks, start=1):
            drop = self.drop_path_rate * (i - 1) / max(self.depth - 1, 1)
            h, attn = block.attention(block.norm1(x))
            x = x + _drop_path(h, drop, self.training)
            if i in rates:
                n = x.shape[1] - NUM_CLS - num_fused
                k = keep_count(n, rates[i])
                if k < n:
                    x, ids = self._prune(x, attn, ids, n, k, num_fused, fuse)
                    num_fused = 1 if fuse else 0
            x = x + _drop_path(block.mlp(block.norm2(x)), drop, self.training)
        x = self.norm(x)
        return {"action": self.action_head(x[:, 0]), "privacy": self.privacy_head(x[:, 1])}, ids

    def _prune(self, x, attn, ids, n, k, num_fused, fuse):
        rows = attn[:, :, :NUM_CLS, NUM_CLS:NUM_CLS + n].mean(dim=1)  # (B, 2, n)
        rows = rows / rows.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
        scores = rows[:, 0] - self.lambda_priv * rows[:, 1]
        idx = torch.topk(scores, k, dim=1, sorted=False).indices.sort(dim=1).values
        tubelets = x[:, NUM_CLS:NUM_CLS + n]
        kept = torch.gather(tubelets, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        parts = [x[:, :NUM_CLS], kept]
        if fuse:
            # Weights: head-mean attention of the action CLS over the tubelets and any previous fused token.
            weights = attn[:, :, 0, NUM_CLS:].mean(dim=1)
            keep_mask = torch.zeros_like(weights, dtype=torch.bool).scatter_(1, idx, True)
            w = weights.masked_fill(keep_mask, 0.0)
            w = w / w.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
            parts.append(torch.einsum("bn,bnd->bd", w, x[:, NUM_CLS:]).unsqueeze(1))
        return torch.cat(parts, dim=1), torch.gather(ids, 1, idx)


def copy_from_anonvid(model: TorchDualViT, params: Mapping[str, Any]) -> None:
    """Loads anonvid DualViT parameters (a nested dict of arrays, `nnx.to_pure_dict`) into the torch peer.

    Linear kernels are `(in, out)` in Flax and `(out, in)` in torch; the embedding kernel `(t, p, q, 3, D)`
    flattens to the patchify order `(t, p, q, c)` used by both.
    """
    def t(a) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    def linear(mod: nn.Linear, p: Mapping[str, Any]) -> None:
        mod.weight.copy_(t(p["kernel"]).reshape(-1, mod.out_features).T)
        if mod.bias is not None:
            mod.bias.copy_(t(p["bias"]))

    def norm(mod: nn.LayerNorm, p: Mapping[str, Any]) -> None:
        mod.weight.copy_(t(p["scale"]))
        mod.bias.copy_(t(p["bias"]))

    with torch.no_grad():
        linear(model.embed, params["embed"])
        model.cls_tokens.copy_(t(params["cls_tokens"]))
        model.pos_embed.copy_(t(params["pos_embed"]))
        blocks = params["blocks"]
        for i, block in enumerate(model.blocks):
            p = blocks[i] if i in blocks else blocks[str(i)]
            for name in ("qkv", "proj", "fc1", "fc2"):
                linear(getattr(block, name), p[name])
            norm(block.norm1, p["norm1"])
            norm(block.norm2, p["norm2"])
        norm(model.norm, params["norm"])
        linear(model.action_head, params["action_head"])
        linear(model.privacy_head, params["privacy_head"])
