"""Fresh-attacker protocol pieces: anonymizing a split, row resumability and the report table."""
import json

import numpy as np
import pytest

from anonvid.protocols import leakage


def _split(n=10, t=4, h=8, w=8):
    rng = np.random.default_rng(0)
    return {"video": rng.integers(0, 256, (n, t, h, w, 3), dtype=np.uint8),
            "action": rng.integers(0, 3, n).astype(np.int32),
            "privacy": rng.integers(0, 2, (n, 5)).astype(np.int32)}


def test_identity_anonymizer_is_lossless_and_labels_untouched():
    data = _split()
    out = leakage.anonymize_split(leakage.identity, data, batch_size=4)  # 10 = 4 + 4 + 2 (padded batch)
    np.testing.assert_array_equal(out["video"], data["video"])
    assert out["action"] is data["action"] and out["privacy"] is data["privacy"]


def test_anonymizer_may_change_shape_and_output_is_quantised():
    data = _split()

    def halve_and_darken(clips):  # temporal sampling + 2x downsampling + a float-valued change
        return clips[:, ::2, ::2, ::2] * 0.5

    out = leakage.anonymize_split(halve_and_darken, data, batch_size=3)
    assert out["video"].shape == (10, 2, 4, 4, 3) and out["video"].dtype == np.uint8
    expect = np.round(data["video"][:, ::2, ::2, ::2].astype(np.float64) / 255 * 0.5 * 255)
    np.testing.assert_allclose(out["video"], expect, atol=1)


def test_empty_split_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        leakage.anonymize_split(leakage.identity, {"video": np.zeros((0, 2, 4, 4, 3), np.uint8)})


def test_finished_row_is_read_back_not_rerun(tmp_path):
    row = {"name": "raw", "top1": 0.5, "cmap": 70.0, "f1": 0.4}
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "result.json").write_text(json.dumps(row))

    def must_not_run(_):
        raise AssertionError("a finished row was recomputed")

    got = leakage.run(None, must_not_run, name="raw", train={}, test={}, num_classes=3,
                      attribute_names=("a",), workdir=str(tmp_path))
    assert got == row
    assert "| raw | 50.00 | 70.00 | 0.400 |" in leakage.markdown_table([row])
