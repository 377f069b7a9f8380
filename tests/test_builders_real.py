"""Real-dataset builders on tiny fixtures in the real on-disk layouts (real split/annotation files, synthetic
videos under real file names): build, read back with tfds.data_source without TensorFlow, bad-input policy,
atomic builds."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from anonvid.data import video_io
from anonvid.data.builders import base, hmdb51, pa_hmdb51, registry, ucf101, vp_privacy
from tests.real_data import copy_tree, shared, write_videos


@pytest.fixture(scope="module")
def ucf_dir(tmp_path_factory):
    md = tmp_path_factory.mktemp("ucf_manual")
    copy_tree(shared("ucf101", "ucfTrainTestlist"), md / "ucfTrainTestlist")
    _, e = ucf101.split_entries(md / "ucfTrainTestlist", 1)
    rels = [r for r, _ in e["train"][:3] + e["test"][:2]]
    videos = write_videos(md / "UCF-101", rels)
    return md, videos, e


def test_ucf101_build_and_read_back(ucf_dir, tmp_path):
    md, videos, e = ucf_dir
    builder, report = registry.prepare("ucf101", manual_dir=md, data_dir=tmp_path, config="split1_24x32",
                                       on_error="skip", max_videos=3)
    assert report["examples"] == {"train": 3, "test": 2}
    # test: 2 written, then every other listed test video is missing on disk and counted, never dropped silently
    assert report["skipped"]["by_reason"] == {"missing_video": 3783 - 2}
    assert json.loads((Path(report["path"]) / base.REPORT_FILE).read_text())["examples"]["test"] == 2
    src = tfds.data_source("ucf101/split1_24x32", data_dir=str(tmp_path))
    rec = src["train"][1]
    rel = e["train"][1][0]
    assert rec["video_id"].decode() == rel and rec["action"] == e["train"][1][1]
    direct, _ = video_io.read_video(md / "UCF-101" / rel)  # independent decode of the same file
    np.testing.assert_array_equal(rec["video"], direct)
    assert builder.info.features["action"].names[0] == "ApplyEyeMakeup"
    assert "tensorflow" not in sys.modules


def test_missing_video_raises_and_leaves_no_dataset(ucf_dir, tmp_path):
    md, _, _ = ucf_dir
    with pytest.raises(base.DatasetError, match="missing_video.*--on_error skip"):
        registry.prepare("ucf101", manual_dir=md, data_dir=tmp_path, config="split1_24x32")
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent.name != ".config"]
    assert leftovers == [], leftovers  # no half dataset, no temporary folder (tfds' .config/ is metadata only)
    assert not list(tmp_path.rglob("incomplete.*"))


def test_corrupt_video_skip_and_force_rebuild_is_atomic(ucf_dir, tmp_path):
    md, _, e = ucf_dir
    work = tmp_path / "manual"
    shutil.copytree(md, work)
    _, first = registry.prepare("ucf101", manual_dir=work, data_dir=tmp_path / "tfds", config="split1_24x32",
                                on_error="skip", max_videos=3)
    (work / "UCF-101" / e["train"][0][0]).write_bytes(b"not a video at all" * 20)
    _, reused = registry.prepare("ucf101", manual_dir=work, data_dir=tmp_path / "tfds", config="split1_24x32",
                                 on_error="skip", max_videos=3)
    assert reused["reused"] and reused["examples"] == first["examples"]
    # a forced rebuild that fails keeps the finished dataset intact
    with pytest.raises(base.DatasetError, match="corrupt_video"):
        registry.prepare("ucf101", manual_dir=work, data_dir=tmp_path / "tfds", config="split1_24x32",
                         max_videos=3, force=True)
    src = tfds.data_source("ucf101/split1_24x32", data_dir=str(tmp_path / "tfds"))
    assert len(src["train"]) == 3
    _, rebuilt = registry.prepare("ucf101", manual_dir=work, data_dir=tmp_path / "tfds", config="split1_24x32",
                                  on_error="skip", max_videos=3, force=True)
    assert rebuilt["skipped"]["by_reason"]["corrupt_video"] == 1 and rebuilt["examples"]["train"] == 2
    assert not [p for p in (tmp_path / "tfds").iterdir() if p.name.startswith(".rebuild")]


def test_missing_folders_have_clear_errors(tmp_path):
    with pytest.raises(base.DatasetError, match="not a directory"):
        registry.prepare("ucf101", manual_dir=tmp_path / "nope", data_dir=tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("")
    with pytest.raises(base.DatasetError, match="UCF-101"):
        registry.prepare("ucf101", manual_dir=tmp_path / "m", data_dir=tmp_path / "d")
    with pytest.raises(ValueError, match="expected split1, split2 or split3"):
        registry.builder_config("hmdb51", "split4")


def _hmdb_fixture(md: Path, n_train=2, n_test=1, pa_too=False):
    copy_tree(shared("hmdb51", "testTrainMulti_7030_splits"), md / hmdb51.SPLITS_DIR)
    _, e = hmdb51.split_entries(md / hmdb51.SPLITS_DIR, 1)
    rels = [r for r, _ in e["train"][:n_train] + e["test"][:n_test]]
    if pa_too:
        ann = pa_hmdb51.parse_annotations(shared("pa_hmdb51", "PrivacyAttributes"))
        pa = {f"{cls}/{v}" for v, (cls, _) in ann.items()}
        listed = sorted(r for items in e.values() for r, _ in items)
        rels = sorted(pa)[:4] + [r for r in listed if r not in pa][:2]  # standard protocol: test, then train
        copy_tree(shared("pa_hmdb51", "PrivacyAttributes"), md / pa_hmdb51.ANNOTATION_DIR)
    write_videos(md, rels, frames=12)
    return e


def test_vp_hmdb51_build(tmp_path):
    md = tmp_path / "hmdb"
    e = _hmdb_fixture(md)
    (md / "annotations").mkdir()
    shutil.copy(shared("vp_privacy", "annotations", "hmdb51_privacy_attribute_label.pickle"), md / "annotations")
    _, report = registry.prepare("vp_hmdb51", manual_dir=md, data_dir=tmp_path / "d", config="split1_24x32",
                                 on_error="skip", max_videos=2)
    assert report["examples"] == {"train": 2, "test": 1}
    src = tfds.data_source("vp_hmdb51/split1_24x32", data_dir=str(tmp_path / "d"))
    labels = vp_privacy.load_vp_labels(md / "annotations" / "hmdb51_privacy_attribute_label.pickle")
    rel = e["train"][0][0]
    np.testing.assert_array_equal(src["train"][0]["privacy"], labels[rel])
    assert src["train"][0]["action"] == e["train"][0][1]
    ids = {src["test"][i]["video_id"].decode() for i in range(len(src["test"]))}
    assert ids <= {r for r, _ in e["test"]}  # split 1 only


def test_vp_label_for_unknown_video_is_reported(tmp_path):
    import pickle

    md = tmp_path / "hmdb"
    e = _hmdb_fixture(md, n_train=1, n_test=1)
    labels = {r[:-4] + ".mp4": np.array([[1, 0, 1, 0, 0]]) for r, _ in e["train"][:1] + e["test"][:1]}
    labels["brush_hair/not_a_real_video.mp4"] = np.array([[1, 0, 0, 0, 0]])
    (md / "hmdb51_privacy_attribute_label.pickle").write_bytes(pickle.dumps(labels))
    with pytest.raises(base.DatasetError, match="label_without_video"):
        registry.prepare("vp_hmdb51", manual_dir=md, data_dir=tmp_path / "d", config="split1_24x32")
    _, report = registry.prepare("vp_hmdb51", manual_dir=md, data_dir=tmp_path / "d", config="split1_24x32",
                                 on_error="skip", max_videos=1)
    assert report["skipped"]["by_reason"]["label_without_video"] == 1
    assert report["examples"] == {"train": 1, "test": 1}
    # every listed video without a label: an empty split is an error that says why
    (md / "hmdb51_privacy_attribute_label.pickle").write_bytes(pickle.dumps({}))
    with pytest.raises(base.DatasetError, match="no examples.*missing_label"):
        registry.prepare("vp_hmdb51", manual_dir=md, data_dir=tmp_path / "d2", config="split1_24x32",
                         on_error="skip", max_videos=1)


def test_pa_hmdb51_standard_protocol(tmp_path):
    md = tmp_path / "pa"
    _hmdb_fixture(md, n_train=2, n_test=0, pa_too=True)
    _, report = registry.prepare("pa_hmdb51", manual_dir=md, data_dir=tmp_path / "d", config="standard_24x32",
                                 on_error="skip", max_videos=2)
    src = tfds.data_source("pa_hmdb51/standard_24x32", data_dir=str(tmp_path / "d"))
    assert report["examples"] == {"train": 2, "test": 2}
    ann = pa_hmdb51.parse_annotations(md / pa_hmdb51.ANNOTATION_DIR)
    for i in range(2):
        rec = src["test"][i]
        name = rec["video_id"].decode().split("/", 1)[1]
        assert rec["privacy_frames"].shape == (12, 5)
        labels, known = pa_hmdb51.frame_labels(ann[name][1], 12)
        np.testing.assert_array_equal(rec["privacy_frames"], labels)
        np.testing.assert_array_equal(rec["privacy_known"], known)
        np.testing.assert_array_equal(rec["privacy"], pa_hmdb51.video_label(ann[name][1]))
        train = src["train"][i]
        assert train["video_id"].decode().split("/", 1)[1] not in ann  # HMDB51 minus the PA-HMDB51 videos
        assert (train["privacy"] == -1).all()


def test_vispr_build(tmp_path):
    md = tmp_path / "vispr"
    md.mkdir()
    shutil.copy(shared("vispr", "attributes.tsv"), md / "attributes.tsv")
    samples = {"train": [("2017_1", ["a0_safe"]), ("2017_2", ["a17_color", "a4_gender", "a64_rel_personal"])],
               "val": [("2017_3", ["a9_face_complete", "a1_age_approx"])], "test": [("2017_4", ["a12_semi_nudity"])]}
    for split, items in samples.items():
        (md / "annotations" / f"{split}2017").mkdir(parents=True)
        (md / "images" / f"{split}2017").mkdir(parents=True)
        for i, (iid, labels) in enumerate(items):
            ann = {"id": iid, "image_path": f"images/{split}2017/{iid}.jpg", "labels": labels,
                   "openimages_id": "x", "source_url": "x"}
            (md / "annotations" / f"{split}2017" / f"{iid}.json").write_text(json.dumps(ann, indent=4))
            Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(md / ann["image_path"])
    # a label file whose image is missing: counted, reported
    (md / "annotations" / "test2017" / "2017_9.json").write_text(json.dumps(
        {"id": "2017_9", "image_path": "images/test2017/2017_9.jpg", "labels": ["a4_gender"]}))
    for config, width in (("vispr1_16x16", 7), ("full_16x16", 68)):
        _, report = registry.prepare("vispr", manual_dir=md, data_dir=tmp_path / "d", config=config, on_error="skip")
        assert report["examples"] == {"train": 2, "val": 1, "test": 1}
        assert report["skipped"]["by_reason"] == {"label_without_image": 1}
        src = tfds.data_source(f"vispr/{config}", data_dir=str(tmp_path / "d"))
        rec = src["train"][1]
        assert rec["image"].shape == (16, 16, 3) and rec["privacy"].shape == (width,)
    np.testing.assert_array_equal(src["train"][1]["privacy"].nonzero()[0], [4, 15, 49])  # full: idx of the ids
    vispr1 = tfds.data_source("vispr/vispr1_16x16", data_dir=str(tmp_path / "d"))
    np.testing.assert_array_equal(vispr1["train"][0]["privacy"], np.zeros(7))
    np.testing.assert_array_equal(vispr1["train"][1]["privacy"], [1, 0, 0, 0, 1, 1, 0])


def test_ucsd_ped2_build(tmp_path):
    root = tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped2"
    clips = {"Train/Train001": 20, "Test/Test001": 180, "Test/Test003": 150}
    for rel, n in clips.items():
        (root / rel).mkdir(parents=True)
        for k in range(1, n + 1):
            Image.fromarray(np.full((6, 8), k % 256, np.uint8)).save(root / rel / f"{k:03d}.tif")
    (root / "Test" / "Test001_gt").mkdir()
    shutil.copy(shared("ucsd", "UCSDped2.m"), root / "Test" / "UCSDped2.m")
    with pytest.raises(base.DatasetError, match="label_without_video.*Test002"):
        registry.prepare("ucsd", manual_dir=root.parent, data_dir=tmp_path / "d", config="ped2")
    _, report = registry.prepare("ucsd", manual_dir=root.parent, data_dir=tmp_path / "d", config="ped2",
                                 on_error="skip")
    assert report["examples"] == {"train": 1, "test": 2}
    assert report["skipped"]["by_reason"] == {"label_without_video": 10}
    src = tfds.data_source("ucsd/ped2", data_dir=str(tmp_path / "d"))
    t1, t3 = src["test"][0], src["test"][1]
    assert t1["video"].shape == (180, 6, 8, 1) and t1["video"][4, 0, 0, 0] == 5
    assert t1["anomaly"][:60].sum() == 0 and t1["anomaly"][60:].all()
    assert t3["video_id"] == b"Test003" and t3["anomaly"][:146].all() and not t3["anomaly"][146:].any()
    assert src["train"][0]["anomaly"].sum() == 0
