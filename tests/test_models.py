"""Model families: output shapes, dtypes, logical sharding names, and per-frame folding of the 2-D ResNet."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from anonvid.models.registry import build_model


@pytest.fixture(scope="module")
def r3d():
    return build_model("r3d", 8, kwargs=dict(widths=(8, 16), blocks=(1, 1), stem="kinetics",
                                               stem_stride=(1, 2, 2)))


@pytest.fixture(scope="module")
def resnet():
    return build_model("resnet2d", 5, kwargs=dict(depth=10, width=8, stem="small"))


def test_r3d_shapes_and_logical_axes(r3d):
    x = jax.random.uniform(jax.random.key(0), (2, 8, 32, 32, 3))
    logits = r3d(x)
    chex.assert_shape(logits, (2, 8))
    chex.assert_type(logits, jnp.float32)
    chex.assert_tree_all_finite(logits)
    specs = nnx.get_partition_spec(nnx.state(r3d, nnx.Param))
    assert tuple(specs["stem"]["kernel"].get_value()) == (None, None, None, "conv_in", "conv_out")
    assert tuple(specs["head"]["kernel"].get_value()) == ("mlp", None)
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        r3d(jnp.zeros((2, 32, 32, 3)))


def test_resnet_is_per_frame_and_mean_of_frame_logits(resnet):
    """A clip's logits are the mean of its frames' logits: frames never mix (checked against the image path)."""
    resnet.eval()
    clip = jax.random.uniform(jax.random.key(1), (2, 4, 32, 32, 3))
    per_frame = jnp.stack([resnet(clip[:, t]) for t in range(4)], axis=1)
    np.testing.assert_allclose(resnet(clip), per_frame.mean(axis=1), rtol=1e-5, atol=1e-5)
    # shuffling the frames of a clip does not change its logits (no temporal modelling in the attacker)
    np.testing.assert_allclose(resnet(clip[:, ::-1]), resnet(clip), rtol=1e-5, atol=1e-5)
    resnet.train()


def test_resnet50_bottleneck_and_bad_args():
    # shapes only (abstract construction and evaluation): initialising ResNet-50's parameters op by op cost the
    # suite ~30 s, compiling it ~20 s more
    m = nnx.eval_shape(lambda: build_model("resnet2d", 3, kwargs=dict(depth=50, width=4, stem="imagenet",
                                                                      temporal_pool="max_features")))
    out = nnx.eval_shape(lambda model, x: model(x), m, jax.ShapeDtypeStruct((1, 2, 64, 64, 3), jnp.float32))
    chex.assert_shape(out, (1, 3))
    assert m.feature_dim == 4 * 8 * 4
    with pytest.raises(ValueError, match="depth 19"):
        build_model("resnet2d", 3, kwargs=dict(depth=19))
    with pytest.raises(ValueError, match="unknown model 'vgg'.*r3d"):
        build_model("vgg", 3)
    with pytest.raises(ValueError, match="bad arguments"):
        build_model("r3d", 3, kwargs=dict(widthz=(8,)))
