"""`anonvid data prepare` and the real-dataset loaders behind `datasets.load_split` (lazy clips, pipeline)."""
import numpy as np
import pytest

from anonvid import cli
from anonvid.data import datasets, pipeline, real, video_io
from anonvid.data.builders import hmdb51, registry
from tests.real_data import copy_tree, shared, write_videos


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    md = tmp_path_factory.mktemp("hmdb")
    copy_tree(shared("hmdb51", "testTrainMulti_7030_splits"), md / hmdb51.SPLITS_DIR)
    copy_tree(shared("pa_hmdb51", "PrivacyAttributes"), md / "PrivacyAttributes")
    _, e = hmdb51.split_entries(md / hmdb51.SPLITS_DIR, 1)
    rels = [r for r, _ in e["train"][:4] + e["test"][:2]]
    write_videos(md, rels, frames=40)
    data_dir = tmp_path_factory.mktemp("tfds")
    return md, data_dir, e


def test_cli_prepare_prints_path_counts_and_skips(prepared, capsys):
    md, data_dir, _ = prepared
    argv = ["data", "prepare", "hmdb51", "--manual_dir", str(md), "--data_dir", str(data_dir),
            "--config", "split1_24x32", "--max_videos", "4", "--on_error", "skip"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "hmdb51/split1_24x32 prepared" in out and "train: 4 examples" in out and "test: 2 examples" in out
    assert "skipped" in out and "missing_video" in out
    assert cli.main(argv) == 0 and "reused" in capsys.readouterr().out


def test_cli_errors_and_help(prepared, capsys, tmp_path):
    md, _, _ = prepared
    assert cli.main(["data", "prepare", "hmdb51", "--manual_dir", str(md), "--data_dir", str(tmp_path),
                     "--config", "split1_24x32"]) == 2
    err = capsys.readouterr().err
    assert "missing_video" in err and "--on_error skip" in err
    assert cli.main(["data", "prepare", "kinetics", "--manual_dir", str(md)]) == 2
    assert "known real datasets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["data", "prepare", "--help"])
    assert "anonvid data prepare vp_ucf101" in capsys.readouterr().out


def test_load_split_reads_clips_lazily(prepared):
    md, data_dir, e = prepared
    registry.prepare("hmdb51", manual_dir=md, data_dir=data_dir, config="split1_24x32", on_error="skip",
                     max_videos=4)
    cfg = dict(name="hmdb51", data_dir=str(data_dir), config="split1_24x32", num_frames=8, frame_stride=2,
               height=16, width=16, train_clips=1, test_clips=3, seed=0)
    train, test = datasets.load_split(cfg, "train"), datasets.load_split(cfg, "test")
    assert isinstance(train["video"], real.ClipColumn) and train["video"].shape == (4, 8, 16, 16, 3)
    assert test["video"].shape == (6, 8, 16, 16, 3)  # 2 videos x 3 evenly spaced clips
    np.testing.assert_array_equal(test["video_index"], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(train["action"], [lab for _, lab in e["train"][:4]])
    # oracle: decode the file directly, take the same frames, resize with video_io
    rel = e["test"][0][0]
    direct, _ = video_io.read_video(md / rel, size=(24, 32))
    idx = video_io.clip_indices(40, clip_len=8, stride=2, mode="uniform", num_clips=3)
    for k in range(3):
        np.testing.assert_array_equal(test["video"][k], video_io.resize_frames(direct[idx[k]], (16, 16)))
    src = pipeline.ArraySource({k: train[k] for k in ("video", "action")})
    assert isinstance(src._arrays["video"], real.ClipColumn)  # kept lazy
    batch = next(iter(pipeline.make_batches(src, global_batch_size=2, seed=0, num_epochs=1)))
    assert batch["video"].shape == (2, 8, 16, 16, 3)
    scores = np.arange(6, dtype=float)[:, None]
    np.testing.assert_allclose(real.video_level_mean(scores, test["video_index"]), [[1.0], [4.0]])


def test_unprepared_dataset_says_which_command_to_run(tmp_path):
    cfg = dict(name="vp_ucf101", data_dir=str(tmp_path), config="split1_224x224")
    with pytest.raises(ValueError, match="anonvid data prepare vp_ucf101 .*--config split1_224x224"):
        datasets.load_split(cfg, "train")
