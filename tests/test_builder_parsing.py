"""Annotation parsers on the real split/annotation files of ../shared/data: official counts, hand-worked labels."""
from pathlib import Path

import numpy as np
import pytest

from anonvid.data.builders import hmdb51, pa_hmdb51, ucf101, ucsd, vispr, vp_privacy
from anonvid.data.builders.base import DatasetError
from tests.real_data import shared


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_official_counts(split):
    classes, entries = ucf101.split_entries(shared("ucf101", "ucfTrainTestlist"), split)
    assert len(classes) == 101 and classes[0] == "ApplyEyeMakeup" and classes[-1] == "YoYo"
    assert (len(entries["train"]), len(entries["test"])) == ucf101.OFFICIAL_COUNTS[split]
    train, test = dict(entries["train"]), dict(entries["test"])
    assert len(train) + len(test) == 13320
    # the class comes from the folder, never the file name (v_HandStandPushups_... is HandstandPushups)
    hsp = [r for r in {**train, **test} if r.startswith("HandstandPushups/")]
    assert hsp and all("HandStandPushups" in r for r in hsp)
    assert {train.get(r, test.get(r)) for r in hsp} == {classes.index("HandstandPushups")}
    groups = {int(r.split("_g")[1][:2]) for r in test}  # test groups 1-7, 8-14, 15-21
    assert groups == set(range(7 * split - 6, 7 * split + 1))


def test_ucf101_bad_files(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 A\n2 B\n")
    (tmp_path / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 2\n")
    (tmp_path / "testlist01.txt").write_text("A/v_A_g02_c01.avi\n")
    with pytest.raises(DatasetError, match="disagrees with folder"):
        ucf101.split_entries(tmp_path, 1)
    with pytest.raises(DatasetError, match="testlist02.txt"):
        (tmp_path / "trainlist02.txt").write_text("A/v_A_g01_c01.avi 1\n")
        ucf101.split_entries(tmp_path, 2)
    with pytest.raises(DatasetError, match="split folder not found"):
        ucf101.split_entries(tmp_path / "nope", 1)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_hmdb51_official_counts(split):
    classes, entries = hmdb51.split_entries(shared("hmdb51", "testTrainMulti_7030_splits"), split)
    assert len(classes) == 51 and "climb" in classes and "climb_stairs" in classes
    counts = tuple(len(entries[k]) for k in ("train", "test", "unused"))
    assert counts == hmdb51.OFFICIAL_COUNTS
    train = {r for r, _ in entries["train"]}
    assert not train & {r for r, _ in entries["test"]}  # one split: no train/test overlap
    per_class = np.bincount([lab for _, lab in entries["train"]], minlength=51)
    assert (per_class == 70).all()


def test_hmdb51_union_of_splits_would_leak():
    """Why one split per config: the union of the three split files' train sets holds test videos of split 1."""
    d = shared("hmdb51", "testTrainMulti_7030_splits")
    test1 = {r for r, _ in hmdb51.split_entries(d, 1)[1]["test"]}
    union_train = {r for k in (1, 2, 3) for r, _ in hmdb51.split_entries(d, k)[1]["train"]}
    assert len(test1 & union_train) > 0


def test_vp_labels_cover_exactly_the_official_videos():
    ucf = vp_privacy.load_vp_labels(shared("vp_privacy", "annotations", "ucf101_privacy_attribute_label.pickle"))
    _, e = ucf101.split_entries(shared("ucf101", "ucfTrainTestlist"), 1)
    assert set(ucf) == {r for r, _ in e["train"] + e["test"]}
    hmdb = vp_privacy.load_vp_labels(shared("vp_privacy", "annotations", "hmdb51_privacy_attribute_label.pickle"))
    _, e = hmdb51.split_entries(shared("hmdb51", "testTrainMulti_7030_splits"), 1)
    assert set(hmdb) == {r for items in e.values() for r, _ in items}


def test_pa_hmdb51_counts_and_split_roles():
    ann = pa_hmdb51.parse_annotations(shared("pa_hmdb51", "PrivacyAttributes"))
    assert len(ann) == pa_hmdb51.NUM_VIDEOS
    _, e = hmdb51.split_entries(shared("hmdb51", "testTrainMulti_7030_splits"), 1)
    role = {r: k for k, items in e.items() for r, _ in items}
    roles = [role[f"{cls}/{v}"] for v, (cls, _) in ann.items()]
    assert (roles.count("train"), roles.count("test"), roles.count("unused")) == (286, 130, 99)
    train, test = pa_hmdb51.random_split(list(ann), seed=42)
    assert (len(train), len(test)) == (309, 206) and not set(train) & set(test)
    assert pa_hmdb51.random_split(list(ann), seed=42) == (train, test)  # fixed seed: reproducible


def _pa(cls, video):
    return pa_hmdb51.parse_annotation_file(shared("pa_hmdb51", "PrivacyAttributes", f"{cls}.json"))[video]


def test_pa_hmdb51_binarisation_hand_worked():
    b = pa_hmdb51.binarize
    assert [b("skin_color", v) for v in (0, 1, 2, 3, [1, 3])] == [0, 1, 1, 1, 1]
    assert [b("face", v) for v in (0, 1, 2)] == [0, 1, 1]
    assert [b("gender", v) for v in (0, 1, 2, [0, 1])] == [0, 1, 1, 1]
    assert [b("nudity", v) for v in (0, 1, 2)] == [0, 1, 1]
    assert [b("relationship", v) for v in (0, 1)] == [0, 1]
    # clap: gender [[0, 54, [0, 1]]] -- a list, so 1 (even though it contains 0)
    clap = _pa("clap", "Aishwarya_Rai_Burns_David_Letterman_in_his_own_show_clap_u_cm_np1_fr_bad_1.avi")
    assert clap["gender"] == [(0, 54, [0, 1])]
    labels, known = pa_hmdb51.frame_labels(clap, 55)
    assert labels[:, 2].all() and known.all()


def test_pa_hmdb51_overlap_gap_and_late_start():
    hug = _pa("hug", "Calins_gratuits_a_Paris_-_Free_Hugs_France_-_version_longue_hug_u_cm_np3_le_med_28.avi")
    assert hug["face"][1:3] == [(5, 11, 1), (11, 29, 2)]
    labels, known = pa_hmdb51.frame_labels(hug, 40)
    assert known[11, 1] == 1 and labels[11, 1] == 1  # frame 11 in two segments, both positive
    kick = _pa("kick_ball", "Lattenknaller_-_M_nner_wie_wir_(Teil_11)_kick_ball_f_cm_np1_fr_goo_0.avi")
    assert kick["face"][:2] == [(0, 15, 2), (17, 35, 1)]
    labels, known = pa_hmdb51.frame_labels(kick, 36)
    assert known[16, 1] == 0 and labels[16, 1] == 0 and known[15, 1] == known[17, 1] == 1  # gap: unlabelled
    fall = _pa("fall_floor", "KUNG_FU_HUSTLE_fall_floor_u_cm_np1_fr_med_8.avi")
    first = min(s for s, _, _ in fall["face"])
    assert first > 0
    labels, known = pa_hmdb51.frame_labels(fall, first + 5)
    assert not known[:first].any()
    # hand-worked: [[0, 22, 1], [23, 43, 2]] face, nudity 0 everywhere -> face 1, nudity 0
    wave = _pa("wave", "CharlieAndTheChocolateFactory_wave_u_nm_np1_fr_bad_1.avi")
    np.testing.assert_array_equal(pa_hmdb51.video_label(wave), [1, 1, 1, 0, 0])


def test_vispr_attribute_table_and_splits():
    ids = vispr.parse_attributes(shared("vispr", "attributes.tsv"))
    assert len(ids) == 68 and ids[0] == "a0_safe"
    assert [ids.index(a) for a in vispr.VISPR1] == [4, 9, 10, 12, 15, 49, 50]  # PROVENANCE: id number != column
    for split, n in vispr.OFFICIAL_COUNTS.items():
        lines = vispr.read_split_list(shared("vispr", f"{split}2017.txt"))
        assert len(lines) == n and all(x.startswith(f"annotations/{split}2017/2017_") for x in lines)
    np.testing.assert_array_equal(vispr.label_vector(["a0_safe"], vispr.VISPR1), np.zeros(7))
    np.testing.assert_array_equal(vispr.label_vector(["a17_color", "a4_gender", "a1_age_approx"], vispr.VISPR1),
                                  [1, 0, 0, 0, 1, 0, 0])


def test_ucsd_ped2_ground_truth():
    gt = ucsd.parse_ground_truth(shared("ucsd", "UCSDped2.m").read_text())
    assert len(gt) == ucsd.OFFICIAL_COUNTS["ped2"][1]
    assert gt[0] == [(61, 180)] and gt[5] == [(1, 159)] and gt[11] == [(88, 180)]
    lab = ucsd.frame_labels(gt[0], 180)
    assert lab[:60].sum() == 0 and lab[60:].all()  # 1-based 61 = index 60
    assert ucsd.parse_ground_truth("TestVideoFile{end+1}.gt_frame = [5:90, 140:200];") == [[(5, 90), (140, 200)]]
    with pytest.raises(DatasetError, match="ends after"):
        ucsd.frame_labels([(1, 200)], 180)
    with pytest.raises(DatasetError, match="no 'TestVideoFile"):
        ucsd.parse_ground_truth("")


def test_tests_do_not_copy_real_files_into_repo():
    repo = Path(__file__).resolve().parents[1]
    assert not list(repo.glob("**/trainlist01.txt")) and not list(repo.glob("**/*privacy_attribute_label.pickle"))
