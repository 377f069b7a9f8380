"""The per-tap weight-gradient convolution equals XLA's convolution, value and both gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from anonvid.models import fast_conv

CASES = [  # input shape, kernel spatial, C_out, strides, padding
    ((2, 9, 11, 3), (3, 3), 4, (1, 1), "SAME"),
    ((2, 9, 11, 3), (7, 7), 5, (2, 2), "SAME"),
    ((2, 10, 10, 4), (3, 3), 6, (2, 2), "VALID"),
    ((2, 8, 8, 2), (1, 1), 3, (2, 2), "SAME"),
    ((1, 5, 9, 7, 3), (3, 7, 7), 4, (1, 2, 2), "SAME"),
    ((2, 6, 8, 8, 4), (3, 3, 3), 5, (2, 2, 2), "SAME"),
    ((2, 6, 8, 8, 4), (3, 3, 3), 5, (1, 1, 1), ((1, 1), (0, 2), (2, 0))),
]


def _dn(ndim):
    letters = "DHW"[-(ndim - 2):]
    return ("N" + letters + "C", letters + "IO", "N" + letters + "C")


@pytest.mark.parametrize("shape,kernel,cout,strides,padding", CASES)
def test_matches_lax_value_and_gradients(shape, kernel, cout, strides, padding):
    kx, kw, kd = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, kernel + (shape[-1], cout))
    dn = _dn(len(shape))

    def ref(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)

    def ours(x, w):
        numbers = lax.conv_dimension_numbers(x.shape, w.shape, dn)
        return fast_conv.conv_general_dilated(x, w, strides, padding, dimension_numbers=numbers)

    dy = jax.random.normal(kd, jax.eval_shape(ref, x, w).shape)

    @jax.jit  # one compiled program: op-by-op, the 147 taps of the 3x7x7 case took ~40 s of dispatch
    def values_and_gradients(x, w, dy):
        (y_ref, vjp_ref), (y, vjp) = jax.vjp(ref, x, w), jax.vjp(ours, x, w)
        return y, y_ref, vjp(dy), vjp_ref(dy)

    y, y_ref, grads, grads_ref = values_and_gradients(x, w, dy)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
    for got, want in zip(grads, grads_ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_unsupported_cases_fall_back_to_lax():
    x = jnp.ones((1, 8, 8, 4))
    w = jnp.ones((3, 3, 2, 4))
    numbers = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    got = fast_conv.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=numbers, feature_group_count=2,
                                         rhs_dilation=(2, 2))
    want = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=numbers, feature_group_count=2,
                                    rhs_dilation=(2, 2))
    np.testing.assert_allclose(got, want)
