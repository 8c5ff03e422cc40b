import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from crossmodal.data import (Dataset, PairedData, Split, get_dataset, labels_from_classes, load_dataset,
                             paired_from_mat, save_dataset)
from crossmodal.data.sources.toy import make_toy
from crossmodal.errors import DataError


def _pd(rng, n=20, text=None, labels=True):
    return PairedData(image=rng.random((n, 6)), text=rng.random((n, 4)) if text is None else text,
                      labels=(rng.random((n, 3)) < 0.5).astype(np.uint8) if labels else None)


def test_paired_data_validation_messages(rng):
    with pytest.raises(DataError, match="text features have 5 rows but image features have 4"):
        PairedData(image=np.ones((4, 3)), text=np.ones((5, 2)))
    bad = np.ones((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="NaN or infinite.*row 2"):
        PairedData(image=bad, text=np.ones((4, 2)))
    with pytest.raises(DataError, match="2-D"):
        PairedData(image=np.ones(4), text=np.ones((4, 2)))
    with pytest.raises(DataError, match="labels: 3 rows"):
        PairedData(image=np.ones((4, 3)), text=np.ones((4, 2)), labels=np.ones((3, 2)))
    with pytest.raises(DataError, match="0 or 1"):
        PairedData(image=np.ones((4, 3)), text=np.ones((4, 2)), labels=np.full((4, 2), 3))
    d = PairedData(image=np.ones((4, 3), dtype=np.float64), text=sp.csr_matrix(np.eye(4)))
    assert d.image.dtype == np.float32 and sp.issparse(d.text) and d.ids.tolist() == ["0", "1", "2", "3"]


def test_labels_from_classes():
    assert labels_from_classes([1, 3, 3]).tolist() == [[1, 0], [0, 1], [0, 1]]
    assert labels_from_classes([1, 2, 10], n_classes=10)[2, 9] == 1
    assert labels_from_classes([0, 9], n_classes=10)[1, 9] == 1


def test_split_rules_and_hash():
    s = Split.random(100, n_query=10, n_train=50, n_validation=5, seed=7)
    assert len(s.query) == 10 and len(s.database) == 90 and len(s.train) == 50
    assert not set(s.query) & set(s.database)
    assert set(s.validation) <= set(s.database) and not set(s.validation) & set(s.train)
    assert s.hash == Split.random(100, n_query=10, n_train=50, n_validation=5, seed=7).hash
    assert s.hash != Split.random(100, n_query=10, n_train=50, n_validation=5, seed=8).hash
    with pytest.raises(DataError, match="query and train share"):
        Split(train=[0, 1], validation=[], query=[1], database=[2])
    with pytest.raises(DataError, match="validation and train share"):
        Split(train=[0, 1], validation=[1], query=[3], database=[0, 1, 2])
    d = s.to_dict()
    d["train"][0] = d["query"][0]
    with pytest.raises(DataError):
        Split.from_dict(d)


@pytest.mark.parametrize("sparse", [False, True])
def test_canonical_round_trip(tmp_path, rng, sparse):
    text = sp.random(20, 30, density=0.2, format="csr", random_state=1) if sparse else rng.random((20, 4))
    data = _pd(rng, text=text)
    ds = Dataset(data=data, split=Split.random(20, n_query=4, n_validation=2, seed=0), name="x",
                 extras={"pixels": rng.integers(0, 255, (20, 4, 4, 3), dtype=np.uint8)})
    out = save_dataset(ds, tmp_path / "ds")
    back = load_dataset(out)
    assert isinstance(back.data.image, np.memmap)
    assert np.array_equal(back.data.image, data.image)
    assert np.array_equal(back.data.text_dense(), data.text_dense())
    assert np.array_equal(back.data.labels, data.labels)
    assert back.data.ids.tolist() == data.ids.tolist()
    assert back.split.hash == ds.split.hash
    assert np.array_equal(back.extras["pixels"], ds.extras["pixels"])
    with pytest.raises(DataError, match="exists and is not empty"):
        save_dataset(ds, out)  # never overwrites by accident
    assert not list(tmp_path.glob(".ds.partial-*"))


def test_truncated_dataset_file(tmp_path, rng):
    ds = Dataset(data=_pd(rng), split=Split.random(20, n_query=4, seed=0))
    out = save_dataset(ds, tmp_path / "ds")
    raw = (out / "image.npy").read_bytes()
    (out / "image.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(out)


def _write_v73(path, arrays):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=np.asarray(v).T)  # MATLAB v7.3 stores column-major


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_mat_reader_train_test_scheme(tmp_path, rng, version):
    arrays = {"I_tr": rng.random((12, 5)), "T_tr": rng.random((12, 3)), "L_tr": np.arange(12) % 4 + 1,
              "I_te": rng.random((6, 5)), "T_te": rng.random((6, 3)), "L_te": np.arange(6) % 4 + 1}
    path = tmp_path / "f.mat"
    if version == "v5":
        scipy.io.savemat(path, arrays)
    else:
        _write_v73(path, arrays)
    data, info = paired_from_mat(path)
    assert info["n_train"] == 12 and data.n == 18
    assert np.allclose(data.image[:12], arrays["I_tr"]) and np.allclose(data.text[12:], arrays["T_te"])
    assert data.labels.shape == (18, 4) and data.labels[:12].argmax(1).tolist() == (np.arange(12) % 4).tolist()


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_mat_reader_all_scheme_multi_hot_and_split_files(tmp_path, rng, version):
    X, Y = rng.random((15, 7)), rng.integers(0, 2, (15, 9)).astype(np.uint8)
    L = (rng.random((15, 4)) < 0.4).astype(np.uint8)
    paths = []
    for key, arr in (("XAll", X), ("YAll", Y), ("LAll", L)):
        p = tmp_path / f"{key}.mat"
        scipy.io.savemat(p, {key: arr}) if version == "v5" else _write_v73(p, {key: arr})
        paths.append(p)
    data, _ = paired_from_mat(*paths)
    assert data.image.shape == (15, 7) and np.allclose(data.image, X)
    assert np.array_equal(data.text, Y) and np.array_equal(data.labels, L)


def test_mat_reader_bad_files(tmp_path):
    p = tmp_path / "odd.mat"
    scipy.io.savemat(p, {"foo": np.ones((3, 3))})
    with pytest.raises(DataError, match="unknown keys \\(foo\\)"):
        paired_from_mat(p)
    with pytest.raises(DataError, match="file not found"):
        paired_from_mat(tmp_path / "missing.mat")
    t = tmp_path / "trunc.mat"
    scipy.io.savemat(t, {"XAll": np.ones((50, 50)), "YAll": np.ones((50, 5))})
    t.write_bytes(t.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated|not a readable"):
        paired_from_mat(t)


def test_toy_is_deterministic_and_labelled():
    a, b = make_toy(n=100, seed=5, n_query=10), make_toy(n=100, seed=5, n_query=10)
    assert np.array_equal(a.data.image, b.data.image) and a.split.hash == b.split.hash
    caps = a.extras["captions"]
    names = a.data.meta["label_names"]
    for cap, lab in zip(caps[:20], a.data.labels[:20]):
        assert set(cap.replace("a ", "").split(" and ")) == {names[j] for j in np.flatnonzero(lab)}
    assert not np.array_equal(a.data.image, make_toy(n=100, seed=6, n_query=10).data.image)


def test_wiki_standard_protocol(wiki_dir):
    ds = get_dataset("wiki", root=wiki_dir)
    assert ds.data.n == 2866 and ds.data.image_dim == 128 and ds.data.text_dim == 10
    assert len(ds.split.query) == 693 and len(ds.split.database) == 2173
    assert len(ds.split.train) == 2173 - 217 and len(ds.split.validation) == 217
    assert np.array_equal(np.union1d(ds.split.train, ds.split.validation), ds.split.database)
    assert ds.data.labels.shape == (2866, 10) and (ds.data.labels.sum(1) == 1).all()


def test_wiki_missing_root(tmp_path):
    with pytest.raises(DataError, match="no raw_features.mat"):
        get_dataset("wiki", root=tmp_path)


def test_unknown_dataset_suggests():
    with pytest.raises(DataError, match="did you mean 'wiki'"):
        get_dataset("wikki")


@pytest.mark.parametrize("name", ["meta.json", "split.json"])
def test_non_utf8_json_of_a_dataset_folder_is_one_line(tmp_path, capsys, name):
    """meta.json / split.json that are not UTF-8: one DataError naming the file from load_dataset,
    get_dataset and `crossmodal train --dataset FOLDER` (exit 2, one line, nothing written)."""
    from crossmodal.cli import main

    folder = save_dataset(make_toy(n=60, n_query=6), tmp_path / "ds")
    f = folder / name
    f.write_bytes(f.read_bytes().replace(b'"', b'"\xff', 1))
    for load in (load_dataset, get_dataset):
        with pytest.raises(DataError) as err:
            load(str(folder))
        msg = str(err.value)
        assert msg == f"{f}: damaged (not UTF-8 text); restore it or prepare the dataset again", msg
    capsys.readouterr()
    code = main(["train", "lsh", "--dataset", str(folder), "--bits", "8", "--out", str(tmp_path / "runs"),
                 "--tracker", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"crossmodal: error: {f}: damaged (not UTF-8 text); restore it or prepare "
                                        "the dataset again"]
    assert not (tmp_path / "runs").exists()


def test_overwrite_refuses_a_folder_with_an_unreadable_meta_json(tmp_path):
    folder = save_dataset(make_toy(n=60, n_query=6), tmp_path / "ds")
    (folder / "meta.json").write_bytes(b"\xff\xfe")
    with pytest.raises(DataError, match="not a dataset folder crossmodal wrote"):
        save_dataset(make_toy(n=60, n_query=6), folder, overwrite=True)
    assert (folder / "meta.json").read_bytes() == b"\xff\xfe"


def test_saved_folder_format_is_unchanged(tmp_path):
    """The files, meta.json keys, split hash and data fingerprint of a saved toy folder (the values the
    code before the data layer was split by job wrote; folders written before must still load alike)."""
    import json

    from crossmodal.data import data_fingerprint

    ds = make_toy(n=60, n_query=6)
    folder = save_dataset(ds, tmp_path / "ds")
    assert sorted(p.name for p in folder.iterdir()) == [
        "extra_captions.npy", "extra_pixels.npy", "ids.txt", "image.npy", "labels.npy", "meta.json", "split.json",
        "text.npy"]
    meta = json.loads((folder / "meta.json").read_text())
    assert list(meta) == ["format_version", "name", "meta", "featurizers", "summary", "files"]
    assert meta["format_version"] == 1 and meta["summary"]["split_hash"] == ds.split.hash
    back = load_dataset(folder)
    assert back.split.hash == ds.split.hash == "15219fd9f796"
    assert data_fingerprint(back.data) == data_fingerprint(ds.data) == "sha256:8b97912b58586f66"
