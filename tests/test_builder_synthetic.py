"""Tests of the synthetic TFDS builders: build without TensorFlow, read back with data sources."""
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from anonvid.data import synthetic
from anonvid.data.builders import synthetic as builders

TINY = dict(num_frames=8, height=32, width=32)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfds")
    builders.prepare("actions", "tiny", data_dir=str(d))
    builders.prepare("surveillance", "tiny", data_dir=str(d))
    return str(d)


def test_actions_tiny_round_trip(data_dir):
    sources = tfds.data_source("synthetic_actions/tiny", data_dir=data_dir)
    assert {k: len(v) for k, v in sources.items()} == {"train": 64, "val": 16, "test": 16}
    for split, n in (("val", 16), ("train", 64)):
        ref = synthetic.actions_split(split, n, seed=0, **TINY)
        for i in range(n):
            rec = sources[split][i]
            assert rec["index"] == i
            for key in ("video", "privacy_mask", "action_mask", "privacy"):
                assert rec[key].dtype == ref[key].dtype, key
                np.testing.assert_array_equal(rec[key], ref[key][i], err_msg=f"{split}[{i}].{key}")
            assert rec["action"] == ref["action"][i]
    assert "tensorflow" not in sys.modules  # built and read without TensorFlow


def test_actions_builder_info_and_files(data_dir):
    builder = builders.SyntheticActions(config="tiny", data_dir=data_dir)
    info = builder.info
    assert info.features["action"].names == list(synthetic.ACTIONS)
    assert info.features["video"].shape == (8, 32, 32, 3) and info.features["video"].np_dtype == np.uint8  # .dtype needs TF
    assert info.splits["train"].num_examples == 64
    assert info.file_format.value == "array_record"
    files = [p.name for p in builder.data_path.iterdir()]
    assert any(".array_record-" in f for f in files), files
    via_builder = builder.as_data_source()
    np.testing.assert_array_equal(via_builder["test"][3]["video"],
                                  synthetic.actions_split("test", 16, seed=0, **TINY)["video"][3])


def test_surveillance_tiny_round_trip(data_dir):
    sources = tfds.data_source("synthetic_surveillance/tiny", data_dir=data_dir)
    train = [sources["train"][i] for i in range(len(sources["train"]))]
    assert sum(int(r["anomaly"].sum()) for r in train) == 0
    ref = synthetic.surveillance_split("test", 4, seed=0, num_frames=40, height=32, width=32)
    for i in range(4):
        rec = sources["test"][i]
        for key in ref:
            np.testing.assert_array_equal(rec[key], ref[key][i], err_msg=key)
    assert ref["anomaly"].sum() > 0


def test_prepare_validation(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic mode"):
        builders.prepare("faces", "tiny", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="expected one of"):
        builders.prepare("actions", "huge", data_dir=str(tmp_path))
