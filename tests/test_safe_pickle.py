"""safe_pickle: the real STPrivacy label pickles load; a pickle that would run code is refused and runs nothing."""
import os
import pickle

import numpy as np
import pytest

from anonvid.data.builders import safe_pickle, vp_privacy
from tests.real_data import shared


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):  # naive pickle.load would call os.system(...) and create the file
        return (os.system, (f"echo pwned > {self.path}",))


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps({"PommelHorse/v_PommelHorse_g18_c04.mp4": _Exploit(marker)})
    with pytest.raises(safe_pickle.UnsafePickleError, match="system"):
        safe_pickle.load_numpy_pickle(payload)
    path = tmp_path / "labels.pickle"
    path.write_bytes(payload)
    with pytest.raises(safe_pickle.UnsafePickleError, match="refusing"):
        vp_privacy.load_vp_labels(path)
    assert not marker.exists()


def test_eval_and_builtins_globals_are_refused(tmp_path):
    payload = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(safe_pickle.UnsafePickleError, match="builtins.eval"):
        safe_pickle.load_numpy_pickle(payload)


def test_numpy_arrays_load():
    data = {"a/b.mp4": np.array([[1, 0, 1, 0, 0]]), "x": np.arange(3, dtype=np.float32)}
    for protocol in (2, 4, 5):
        out = safe_pickle.load_numpy_pickle(pickle.dumps(data, protocol=protocol))
        np.testing.assert_array_equal(out["a/b.mp4"], data["a/b.mp4"])
        assert out["x"].dtype == np.float32


@pytest.mark.parametrize("name,count,positives", [
    ("hmdb51_privacy_attribute_label.pickle", 6766, [6109, 4194, 6195, 1815, 1431]),
    ("ucf101_privacy_attribute_label.pickle", 13320, [12143, 7994, 11949, 3289, 3375]),
])
def test_real_stprivacy_pickles(name, count, positives):
    labels = vp_privacy.load_vp_labels(shared("vp_privacy", "annotations", name))
    assert len(labels) == count
    assert all(k.endswith(".avi") and v.shape == (5,) for k, v in labels.items())
    np.testing.assert_array_equal(np.stack(list(labels.values())).sum(0), positives)  # PROVENANCE statistics
