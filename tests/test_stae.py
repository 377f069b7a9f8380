"""STAE (ConvLSTM autoencoder): shapes and range, size errors, logical axes, the sub-pixel transposed convolution
against the adjoint of a strided convolution, the ConvLSTM against an unrolled reference, causality in time."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from anonvid.models.registry import build_model
from anonvid.models.stae import STAE, conv_transpose_subpixel

SMOKE = dict(widths=(8, 8), lstm=(8, 4, 8))


@pytest.fixture(scope="module")
def model():
    return build_model("stae", 0, kwargs=SMOKE)


@pytest.fixture(scope="module")
def forward():
    # One compiled forward (shape (2, 4, 32, 24, 1)) shared by the tests: eager calls dispatch op by op.
    return nnx.jit(lambda m, x: m(x))


def test_output_shape_range_and_errors(model, forward):
    x = jax.random.uniform(jax.random.key(0), (2, 4, 32, 24, 1))  # any T; H, W multiples of 8, not square
    y = forward(model, x)
    chex.assert_shape(y, x.shape)
    chex.assert_type(y, jnp.float32)
    chex.assert_tree_all_finite(y)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    with pytest.raises(ValueError, match="multiples of 8; got 30×24"):
        model(jnp.zeros((1, 2, 30, 24, 1)))
    with pytest.raises(ValueError, match=r"grey clips \(B, T, H, W, 1\)"):
        model(jnp.zeros((1, 2, 32, 32, 3)))
    with pytest.raises(ValueError, match="grey clips"):
        model(jnp.zeros((2, 32, 32, 1)))


def test_reconstruction_is_causal_in_time(model, forward):
    """Per-frame convolutions and a forward ConvLSTM: changing frame 2 leaves the outputs of frames 0-1 alone."""
    x = jax.random.uniform(jax.random.key(1), (2, 4, 32, 24, 1))
    y = forward(model, x)
    y2 = forward(model, x.at[:, 2].set(1.0 - x[:, 2]))
    np.testing.assert_array_equal(np.asarray(y[:, :2]), np.asarray(y2[:, :2]))
    assert float(jnp.abs(y[:, 2:] - y2[:, 2:]).max()) > 0


def test_logical_axes_and_widths(model):
    specs = nnx.get_partition_spec(nnx.state(model, nnx.Param))
    assert tuple(specs["conv1"]["kernel"].get_value()) == (None, None, "conv_in", "conv_out")
    assert tuple(specs["deconv2"]["kernel"].get_value()) == (None, None, "conv_in", "conv_out")
    assert tuple(specs["lstms"][0]["hidden_conv"]["kernel"].get_value()) == (None, None, "conv_in", "conv_out")
    assert tuple(specs["norm1"]["scale"].get_value()) == ("conv_out",)
    assert model.conv1.kernel.shape == (11, 11, 1, 8)
    assert model.conv2.kernel.shape == (5, 5, 8, 8)
    assert model.deconv1.kernel.shape == (5, 5, 8, 8)
    assert model.deconv2.kernel.shape == (11, 11, 8, 8)
    assert model.out.kernel.shape == (11, 11, 8, 1)
    assert [c.features for c in model.lstms] == [8, 4, 8]
    # forget-gate bias starts at 1, the other gates at 0 (gate order i, f, g, o)
    np.testing.assert_array_equal(np.asarray(model.lstms[1].input_conv.bias[...]),
                                  np.repeat([0.0, 1.0, 0.0, 0.0], 4))


def test_paper_defaults_and_dtypes_abstractly():
    """Paper widths and a bfloat16 model, shapes only (no compilation): parameters stay float32."""
    m = nnx.eval_shape(lambda: STAE(dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
    assert m.conv1.kernel.shape == (11, 11, 1, 128) and m.conv2.kernel.shape == (5, 5, 128, 64)
    assert [c.features for c in m.lstms] == [64, 32, 64]
    assert m.deconv2.kernel.shape == (11, 11, 64, 128)
    assert {p.dtype for p in jax.tree.leaves(nnx.state(m, nnx.Param))} == {jnp.dtype(jnp.float32)}
    out = nnx.eval_shape(lambda mod, x: mod(x), m, jax.ShapeDtypeStruct((1, 10, 64, 64, 1), jnp.float32))
    assert out.shape == (1, 10, 64, 64, 1) and out.dtype == jnp.float32


def test_registry_ignores_num_outputs_and_checks_kwargs():
    with pytest.raises(ValueError, match="bad arguments"):
        build_model("stae", 0, kwargs=dict(width=(8, 8)))
    with pytest.raises(ValueError, match="widths must be two"):
        build_model("stae", 0, kwargs=dict(widths=(8, 8, 8)))


@pytest.mark.parametrize("k,s,n", [(11, 4, 3), (5, 2, 3), (4, 2, 2)])  # the model's two, an even kernel
def test_subpixel_transposed_conv_is_adjoint_of_strided_conv(k, s, n):
    """Oracle: the transposed conv is the input-gradient (adjoint) of a stride-s conv, padding (p, k - s - p)."""
    x = jax.random.normal(jax.random.key(0), (2, n, n + 1, 3))
    w = jax.random.normal(jax.random.key(1), (k, k, 3, 5))
    p = (k - s) // 2
    pads = ((p, k - s - p),) * 2

    def strided(z):
        return lax.conv_general_dilated(z, w.transpose(0, 1, 3, 2), (s, s), pads,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    _, adjoint = jax.vjp(strided, jnp.zeros((2, n * s, (n + 1) * s, 5)))
    out = conv_transpose_subpixel(x, w, s)
    chex.assert_shape(out, (2, n * s, (n + 1) * s, 5))
    np.testing.assert_allclose(out, adjoint(x)[0], atol=1e-5, rtol=1e-5)


def test_convlstm_matches_unrolled_reference(model):
    """The scanned ConvLSTM equals a Python loop over time written with lax.conv (gate order i, f, g, o)."""
    cell = model.lstms[1]
    x = jax.random.normal(jax.random.key(2), (2, 3, 4, 4, 8))
    conv = lambda v, kern: lax.conv_general_dilated(v, kern, (1, 1), "SAME",
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    wx, b, wh = cell.input_conv.kernel[...], cell.input_conv.bias[...], cell.hidden_conv.kernel[...]
    h = c = jnp.zeros((2, 4, 4, 4))
    ref = []
    for t in range(3):
        z = conv(x[:, t], wx) + b + conv(h, wh)
        i, f, g, o = (z[..., 4 * j:4 * (j + 1)] for j in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        ref.append(h)
    np.testing.assert_allclose(cell(x), jnp.stack(ref, axis=1), atol=1e-5, rtol=1e-5)
