"""STAE: the ConvLSTM spatio-temporal autoencoder of Chong & Tay (2017), the VAD model of method B.

"Abnormal Event Detection in Videos using Spatiotemporal Autoencoder" (ISNN 2017); METHODS.md section B.
Input: grey clips `(B, T, H, W, 1)` float in [0, 1] (T = 10 in the paper); output: their reconstruction, same
shape, in [0, 1]. H and W must be multiples of 8 (the encoder's total stride).

Layers (paper widths; `widths` and `lstm` shrink them for CPU runs):

    per frame   conv 11×11 stride 4 → c1 (128), LN, tanh
    per frame   conv 5×5 stride 2   → c2 (64),  LN, tanh
    over time   ConvLSTM 3×3 → l1 (64), LN;  ConvLSTM 3×3 → l2 (32), LN;  ConvLSTM 3×3 → l3 (64), LN
    per frame   transposed conv 5×5 stride 2   → c2 (64),  LN, tanh
    per frame   transposed conv 11×11 stride 4 → c1 (128), LN, tanh
    per frame   conv 11×11 → 1, sigmoid

"LN" is layer normalisation over each frame's (H, W, C), i.e. group norm with one group. Activations: the paper
gives none for the encoder/decoder convolutions; we follow the common implementation and put tanh after each
of them (after its LN), keep the ConvLSTM's own tanh/sigmoid, and end with a sigmoid. ConvLSTM cells follow
Shi et al. (2015) without peepholes, as Keras' ConvLSTM2D does: input and recurrent 3×3 convolutions, sigmoid
gates, tanh cell, forget-gate bias initialised to 1, zero initial state. Convolutions before an LN have no
bias (the LN's offset makes it redundant).

Transposed convolutions are computed as one stride-1 convolution that produces all s×s output phases,
followed by a depth-to-space shuffle (`conv_transpose_subpixel`). It is the same linear map as the adjoint of a
stride-s convolution (tested), but faster on CPU: 11×11 stride 4, 16 → 32 channels, 40 frames of 16² → 64²,
forward + backward took 0.87 s with `lax.conv_transpose` and 0.20-0.25 s as a sub-pixel convolution (2-core
CPU, 2026-11-29). The sub-pixel kernel has a few zero taps (12² instead of 11² per output for 11×11 stride 4).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from anonvid.models import layers

STRIDE = 8  # total spatial stride of the encoder (4 × 2): frame sizes must be multiples of it


def _conv(in_features: int, out_features: int, kernel_size: int, *, strides: int = 1, use_bias: bool = False,
          dtype, param_dtype, rngs: nnx.Rngs) -> nnx.Conv:
    """`layers.conv` (logical axes, Kaiming init) computed by XLA's own convolution.

    `fast_conv`'s per-tap weight gradient pays off for few-channel, small kernels; this model's 11×11 kernels
    have 121 taps, and its full-resolution output conv has one output channel, where the per-tap matmuls are
    degenerate. Measured on the 2-core CPU (40 frames of 64², widths (32, 16)): the output conv's forward +
    backward took 11.6 s with fast_conv and 0.34 s with XLA's; the first conv 0.040 s against 0.019 s.
    """
    conv = layers.conv(in_features, out_features, (kernel_size, kernel_size), strides=strides,
                       use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    conv.conv_general_dilated = jax.lax.conv_general_dilated
    return conv


def _norm(num_features: int, *, dtype, param_dtype, rngs: nnx.Rngs) -> nnx.GroupNorm:
    """"LN" of the paper: group norm with one group, statistics over each frame's (H, W, C)."""
    return nnx.GroupNorm(
        num_features, num_groups=1, epsilon=1e-5, dtype=dtype, param_dtype=param_dtype,
        scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), ("conv_out",)),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("conv_out",)), rngs=rngs)


def _phase_taps(k: int, s: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Kernel-tap table of a stride-`s` transposed convolution rewritten as a stride-1 one (one axis).

    The transposed convolution is `out[s*q + r] = sum_m x[q - m] w[s*m + r + p]` with `p = (k - s) // 2` (the
    adjoint of a stride-s convolution with padding (p, k - s - p), which maps s*n samples to n). For every
    output phase r this is a stride-1 correlation over offsets m in [m_lo, m_hi] (the union over phases).

    Returns:
      `(taps, valid, pad_lo, pad_hi)`: `taps[j, r]` is the index into w of correlation tap j for phase r
      (`m = m_hi - j`), `valid[j, r]` whether that index lies inside the kernel; the input is padded by
      (pad_lo, pad_hi) = (m_hi, -m_lo).
    """
    p = (k - s) // 2
    m_lo = -((s - 1 + p) // s)  # ceil(-(s - 1 + p) / s)
    m_hi = (k - 1 - p) // s
    j = np.arange(m_hi - m_lo + 1)[:, None]
    r = np.arange(s)[None, :]
    taps = s * (m_hi - j) + r + p
    valid = (taps >= 0) & (taps < k)
    return np.clip(taps, 0, k - 1), valid, m_hi, -m_lo


def conv_transpose_subpixel(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """2-D transposed convolution (channels-last), output exactly `stride` × the input size.

    Equals the input-gradient of a stride-`stride` convolution with padding `(p, k - stride - p)`,
    `p = (k - stride) // 2`, whose kernel is `kernel` with its in/out axes swapped (tested against `jax.vjp`).

    Args:
      x: `(N, h, w, C_in)`.
      kernel: `(k, k, C_in, C_out)` with k >= stride.
      stride: the upsampling factor s.

    Returns:
      `(N, s*h, s*w, C_out)`.
    """
    k, _, c_in, c_out = kernel.shape
    s = int(stride)
    taps, valid, lo, hi = _phase_taps(k, s)
    kc = taps.shape[0]
    # u[jy, jx, ry, rx] = w[taps[jy, ry], taps[jx, rx]], zero outside the kernel: (kc, s, kc, s, C_in, C_out).
    u = kernel[taps[:, :, None, None], taps[None, None, :, :]]
    u = u * jnp.asarray(valid[:, :, None, None] & valid[None, None, :, :], u.dtype)[..., None, None]
    u = u.transpose(0, 2, 4, 1, 3, 5).reshape(kc, kc, c_in, s * s * c_out)  # (jy, jx, C_in, (ry, rx, C_out))
    y = jax.lax.conv_general_dilated(x, u, (1, 1), ((lo, hi), (lo, hi)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    n, h, w, _ = y.shape
    y = y.reshape(n, h, w, s, s, c_out).transpose(0, 1, 3, 2, 4, 5)  # depth to space
    return y.reshape(n, h * s, w * s, c_out)


class ConvTranspose(nnx.Module):
    """Transposed 2-D convolution with stride = upsampling factor, kernel axes (k, k, conv_in, conv_out)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int, stride: int, *,
                 use_bias: bool = False, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
        if kernel_size < stride:
            raise ValueError(f"transposed conv kernel {kernel_size} must be >= its stride {stride}")
        init = nnx.initializers.variance_scaling(1.0, "fan_avg", "uniform")  # Glorot, as Keras' default
        shape = (kernel_size, kernel_size, in_features, out_features)
        self.kernel = nnx.Param(nnx.with_partitioning(init, (None, None, "conv_in", "conv_out"))(
            rngs.params(), shape, param_dtype))
        self.bias = nnx.data(None)
        if use_bias:
            self.bias = nnx.Param(nnx.with_partitioning(nnx.initializers.zeros_init(), ("conv_out",))(
                rngs.params(), (out_features,), param_dtype))
        self.stride = int(stride)
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        y = conv_transpose_subpixel(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.stride)
        return y if self.bias is None else y + self.bias[...].astype(self.dtype)


class ConvLSTM(nnx.Module):
    """A ConvLSTM layer over a sequence (Shi et al. 2015, no peepholes), returning every time step.

    The input part of the gates is computed for all frames at once (one batched convolution); only the
    recurrent 3×3 convolution runs inside `jax.lax.scan`, so the step is compiled once whatever T is.
    """

    def __init__(self, in_features: int, features: int, kernel_size: int = 3, *, dtype=jnp.float32,
                 param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.features = features
        self.input_conv = _conv(in_features, 4 * features, kernel_size, use_bias=True, dtype=dtype,
                                param_dtype=param_dtype, rngs=rngs)
        self.hidden_conv = _conv(features, 4 * features, kernel_size, use_bias=False, dtype=dtype,
                                 param_dtype=param_dtype, rngs=rngs)
        # Forget-gate bias 1 (Jozefowicz et al. 2015; Keras' unit_forget_bias): remember by default at start.
        bias = self.input_conv.bias
        bias[...] = bias[...].at[features:2 * features].set(1.0)
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        """`(B, T, h, w, C_in)` → hidden states `(B, T, h, w, features)`."""
        b, t, h, w, c = x.shape
        gates_x = self.input_conv(x.reshape(b * t, h, w, c)).reshape(b, t, h, w, 4 * self.features)
        hidden_conv = self.hidden_conv

        def cell(carry, gx):
            hid, cel = carry
            gates = gx + hidden_conv(hid)
            i, f, g, o = jnp.split(gates, 4, axis=-1)
            cel = jax.nn.sigmoid(f) * cel + jax.nn.sigmoid(i) * jnp.tanh(g)
            hid = jax.nn.sigmoid(o) * jnp.tanh(cel)
            return (hid, cel), hid

        zeros = jnp.zeros((b, h, w, self.features), gates_x.dtype)
        _, hs = jax.lax.scan(cell, (zeros, zeros), jnp.moveaxis(gates_x, 1, 0))
        return jnp.moveaxis(hs, 0, 1)


class STAE(nnx.Module):
    """Spatio-temporal autoencoder (Chong & Tay 2017): per-frame conv encoder, 3 ConvLSTMs, conv decoder.

    Args:
      widths: (c1, c2) channels of the two encoder convolutions, mirrored by the decoder (paper: 128, 64).
      lstm: channels of the three ConvLSTM layers (paper: 64, 32, 64).
      dtype: computation dtype (e.g. bfloat16); the reconstruction is returned as float32.
      param_dtype: parameter dtype.
    """

    def __init__(self, *, widths: Sequence[int] = (128, 64), lstm: Sequence[int] = (64, 32, 64),
                 dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
        widths, lstm = tuple(int(v) for v in widths), tuple(int(v) for v in lstm)
        if len(widths) != 2 or min(widths) < 1:
            raise ValueError(f"widths must be two positive channel counts (c1, c2); got {widths}")
        if len(lstm) < 1 or min(lstm) < 1:
            raise ValueError(f"lstm must be positive channel counts, one per ConvLSTM layer; got {lstm}")
        c1, c2 = widths
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.conv1 = _conv(1, c1, 11, strides=4, **kw)
        self.norm1 = _norm(c1, **kw)
        self.conv2 = _conv(c1, c2, 5, strides=2, **kw)
        self.norm2 = _norm(c2, **kw)
        cells, norms, cin = [], [], c2
        for c in lstm:
            cells.append(ConvLSTM(cin, c, **kw))
            norms.append(_norm(c, **kw))
            cin = c
        self.lstms = nnx.List(cells)
        self.lstm_norms = nnx.List(norms)
        self.deconv1 = ConvTranspose(cin, c2, 5, 2, **kw)
        self.norm3 = _norm(c2, **kw)
        self.deconv2 = ConvTranspose(c2, c1, 11, 4, **kw)
        self.norm4 = _norm(c1, **kw)
        self.out = _conv(c1, 1, 11, use_bias=True, **kw)
        # Glorot (Keras' default) for the single-channel output: the house Kaiming fan-out init scales by the one
        # output channel only, which put the initial sigmoid deep in saturation (logit std ~ 10 at c1 = 128).
        glorot = nnx.initializers.variance_scaling(1.0, "fan_avg", "uniform")
        self.out.kernel[...] = glorot(rngs.params(), self.out.kernel.shape, param_dtype)
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        """Reconstruction `(B, T, H, W, 1)` in [0, 1] (float32) of grey clips `(B, T, H, W, 1)` in [0, 1]."""
        if x.ndim != 5 or x.shape[-1] != 1:
            raise ValueError(f"STAE expects grey clips (B, T, H, W, 1); got shape {x.shape} (convert RGB to grey "
                             "first, e.g. anonvid.trainers.vad.to_grey)")
        b, t, h, w, _ = x.shape
        if h % STRIDE or w % STRIDE:
            raise ValueError(f"STAE needs frame height and width that are multiples of {STRIDE}; got {h}×{w} "
                             f"(resize or crop to e.g. {STRIDE * max(1, math.ceil(h / STRIDE))}×"
                             f"{STRIDE * max(1, math.ceil(w / STRIDE))})")
        y = x.astype(self.dtype).reshape(b * t, h, w, 1)  # per-frame layers see frames as a batch
        y = jnp.tanh(self.norm1(self.conv1(y)))
        y = jnp.tanh(self.norm2(self.conv2(y)))
        y = y.reshape((b, t) + y.shape[1:])
        for cell, norm in zip(self.lstms, self.lstm_norms):
            y = cell(y)
            y = norm(y.reshape((b * t,) + y.shape[2:])).reshape(y.shape)
        y = y.reshape((b * t,) + y.shape[2:])
        y = jnp.tanh(self.norm3(self.deconv1(y)))
        y = jnp.tanh(self.norm4(self.deconv2(y)))
        y = jax.nn.sigmoid(self.out(y))
        return y.reshape(b, t, h, w, 1).astype(jnp.float32)
