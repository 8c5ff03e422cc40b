"""Dataset preparation: every raw parser on a fake tree in the real layout, community files,
resume after interruption, verify, and the bad inputs of issue #4."""

import json
import zipfile

import numpy as np
import pytest
import scipy.io

from crossmodal.cli import main
from crossmodal.data import get_dataset, load_dataset
from crossmodal.data import get_spec
from crossmodal.data.prepare import ChunkedArrayWriter, PrepareOptions, prepare_image_lists, safe_extract, verify
from crossmodal.data.prepare import prepare as prepare_options
from crossmodal.data.sources import read_community
from crossmodal.errors import DataError
from tests import fakes

SMALL = dict(n_query=2, n_train=0, n_validation=0, strict_counts=False, progress=False, log=lambda *_: None)


def prepare(name, root, out, log=print, image_featurizer=None, text_featurizer=None, **options):
    """:func:`crossmodal.data.prepare.prepare` with its options as keywords."""
    return prepare_options(PrepareOptions(name, root, out, **options), log=log, image_featurizer=image_featurizer,
                           text_featurizer=text_featurizer)


@pytest.fixture(scope="module")
def clip_image(tiny_clip):
    from crossmodal.features.models import HFImageFeaturizer

    return HFImageFeaturizer(str(tiny_clip), device="cpu")


@pytest.fixture(scope="module")
def clip_text(tiny_clip):
    from crossmodal.features.models import HFTextFeaturizer

    return HFTextFeaturizer(str(tiny_clip), device="cpu")


def test_mirflickr_raw_cleaning_and_features(tmp_path, clip_image):
    want = fakes.make_mirflickr(tmp_path / "raw")
    out = prepare("mirflickr25k", tmp_path / "raw", tmp_path / "ds", image_featurizer=clip_image, min_count=2, **SMALL)
    ds = load_dataset(out)
    assert ds.data.ids.tolist() == want["kept"]
    assert ds.featurizers["text"].vocabulary == want["vocab"]
    text = ds.data.text_dense()
    # im9 has tags tree, sea, sky; im3's rare tag is dropped
    assert text[want["kept"].index("im9")].tolist() == [1, 1, 1]
    assert text[want["kept"].index("im3")].tolist() == [1, 0, 0]
    assert ds.data.labels.shape == (7, 24) and ds.data.labels.any(1).all()
    assert ds.data.image.shape == (7, 8)
    # the stored image features are exactly what the saved featurizer computes for the file
    again = ds.featurizers["image"].transform([tmp_path / "raw" / "mirflickr" / "im4.jpg"])
    np.testing.assert_allclose(ds.data.image[want["kept"].index("im4")], again[0], rtol=1e-5, atol=1e-6)
    assert all(ok for c, ok, _ in verify(out) if not c.startswith("standard"))


def test_nuswide_raw(tmp_path, clip_image):
    want = fakes.make_nuswide(tmp_path / "raw")
    out = prepare("nuswide-tc10", tmp_path / "raw", tmp_path / "ds", image_featurizer=clip_image, **SMALL)
    ds = load_dataset(out)
    assert ds.data.n == want["kept"]
    np.testing.assert_array_equal(ds.data.labels, want["labels"])
    np.testing.assert_array_equal(ds.data.text_dense(), want["tags"])
    assert ds.data.ids[0] == "c00/0000_1000.jpg"


def test_coco_raw_with_clip_text(tmp_path, clip_image, clip_text):
    want = fakes.make_coco(tmp_path / "raw")
    out = prepare("coco", tmp_path / "raw", tmp_path / "ds", image_featurizer=clip_image, text_featurizer=clip_text, **SMALL)
    ds = load_dataset(out)
    assert ds.data.ids.tolist() == want["kept"]
    assert ds.data.meta["label_names"] == ["person", "car", "dog"]
    assert ds.data.labels[0].tolist() == [1, 0, 1]  # image 10: person + dog
    assert ds.data.text.shape == (4, 8)
    assert ds.featurizers["text"].to_dict()["kind"] == "hf-text"


def test_iapr_raw_bow(tmp_path, clip_image):
    want = fakes.make_iapr(tmp_path / "raw")
    out = prepare("iaprtc12", tmp_path / "raw", tmp_path / "ds", image_featurizer=clip_image, **SMALL)
    ds = load_dataset(out)
    assert ds.data.ids.tolist() == want["kept"]  # 00/3 has no description
    assert ds.data.meta["label_names"] == want["labels"]  # the unused label is dropped
    v = ds.featurizers["text"].vocabulary
    assert "red" in v and "a" not in v  # stopwords removed


def test_prepare_from_cli_and_query_with_saved_featurizers(tmp_path, tiny_clip, monkeypatch, capsys):
    fakes.make_coco(tmp_path / "raw")
    monkeypatch.setattr("crossmodal.features.registry.DEFAULT_CLIP", str(tiny_clip))
    rc = main(["datasets", "prepare", "coco", "--root", str(tmp_path / "raw"), "--out", str(tmp_path / "ds"),
               "--query", "1", "--train", "0", "--validation", "0", "--allow-count-mismatch", "--device", "cpu"])
    assert rc == 0
    assert main(["datasets", "verify", str(tmp_path / "ds")]) == 1  # a 4-image COCO is not the standard release
    out = capsys.readouterr().out
    assert "FAIL standard items: 4 (standard release: 122,218)" in out and "ok   file image.npy" in out
    assert main(["train", "lsh", "--dataset", str(tmp_path / "ds"), "--bits", "8", "--out", str(tmp_path / "runs"),
                 "--tracker", "none"]) == 0
    run = next((tmp_path / "runs").iterdir())
    assert main(["query", str(run), "--text", "a dog", "-k", "2"]) == 0
    assert main(["query", str(run), "--image", str(tmp_path / "raw" / "val2014" / "COCO_val2014_000000000020.jpg")]) == 0


class Interrupt(Exception):
    pass


class FlakyFeaturizer:
    """Pixel means, counting what it embeds; raises after ``fail_after`` calls."""

    dim = 3

    def __init__(self, fail_after=None):
        self.calls, self.items, self.fail_after = 0, 0, fail_after

    def transform(self, batch):
        from crossmodal.features import as_rgb_arrays

        if self.fail_after is not None and self.calls >= self.fail_after:
            raise Interrupt
        self.calls += 1
        self.items += len(batch)
        return np.stack([a.reshape(-1, 3).mean(0) for a in as_rgb_arrays(batch)]).astype(np.float32)

    def to_dict(self):
        return {"kind": "pixels", "size": 32, "pool": 1}


def test_interrupted_prepare_resumes_where_it_stopped(tmp_path):
    fakes.make_mirflickr(tmp_path / "raw")
    args = dict(min_count=2, chunk=2, **SMALL)
    with pytest.raises(Interrupt):
        prepare("mirflickr25k", tmp_path / "raw", tmp_path / "ds", image_featurizer=FlakyFeaturizer(fail_after=2), **args)
    assert not (tmp_path / "ds").exists()  # nothing that looks finished
    assert "unfinished preparation" in verify(tmp_path / "ds")[0][2]
    second = FlakyFeaturizer()
    prepare("mirflickr25k", tmp_path / "raw", tmp_path / "ds", image_featurizer=second, **args)
    assert second.items == 3  # 7 items, 2 chunks of 2 were done
    full = FlakyFeaturizer()
    prepare("mirflickr25k", tmp_path / "raw", tmp_path / "ds2", image_featurizer=full, **args)
    assert full.items == 7
    np.testing.assert_array_equal(load_dataset(tmp_path / "ds").data.image, load_dataset(tmp_path / "ds2").data.image)
    assert not list(tmp_path.glob(".ds*.partial"))


def test_chunked_writer_restarts_when_the_job_changed(tmp_path):
    w = ChunkedArrayWriter(tmp_path, "image", 4, 2, "job-a")
    w.write(0, np.ones((2, 2), np.float32))
    assert ChunkedArrayWriter(tmp_path, "image", 4, 2, "job-a").done == 2
    assert ChunkedArrayWriter(tmp_path, "image", 4, 2, "job-b").done == 0


def _community(d, n=30, transpose_text=False, keys=("XAll", "YAll", "LAll")):
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    X, Y = rng.random((n, 6)), (rng.random((n, 5)) < 0.4).astype(np.float64)
    L = (rng.random((n, 4)) < 0.5).astype(np.uint8)
    L[:, 0] |= ~L.any(1)
    scipy.io.savemat(d / "renamed-images.mat", {keys[0]: X})
    scipy.io.savemat(d / "tags.mat", {keys[1]: Y.T if transpose_text else Y})
    scipy.io.savemat(d / "labels.mat", {keys[2]: L})
    return X, Y, L


def test_community_files_found_by_variable_and_transposed_matrix(tmp_path):
    X, Y, L = _community(tmp_path / "mat", transpose_text=True)
    out = prepare("mirflickr25k", tmp_path / "mat", tmp_path / "ds", **SMALL)
    ds = load_dataset(out)
    np.testing.assert_allclose(ds.data.image, X.astype(np.float32))
    np.testing.assert_array_equal(ds.data.text_dense(), Y)
    np.testing.assert_array_equal(ds.data.labels, L)
    assert ds.split.protocol == "unsupervised+custom"
    # the same files load directly as a registry dataset with the standard protocol sizes (overridden here)
    d2 = get_dataset("mirflickr25k", root=tmp_path / "mat", n_query=5, n_train=10, n_validation=3, strict_counts=False)
    assert (len(d2.split.query), len(d2.split.train), len(d2.split.validation)) == (5, 10, 3)


def test_real_mirflickr_community_files(mirflickr_dir):
    c = read_community(get_spec("mirflickr25k"), mirflickr_dir, need_features=False)
    assert c["n"] == 20015 and c["labels"].shape == (20015, 24) and c["text"].shape == (20015, 1386)
    t = c["text"]
    assert set(np.unique(t.data)) == {1.0}  # binary tag vectors
    assert (np.diff(t.indptr) > 0).all()  # every kept pair has a vocabulary tag (the cleaning rule)
    assert c["labels"].any(1).all()  # ... and a label
    assert np.asarray((t > 0).sum(0)).min() < 20  # so the >= 20 count is over all 25,000 images
    with pytest.raises(DataError, match="no image features \\(XAll\\)"):
        get_dataset("mirflickr25k", root=mirflickr_dir)


def test_real_mirflickr_prepared_with_standard_split(mirflickr_dir, tmp_path):
    d = tmp_path / "mat"
    d.mkdir()
    for f in mirflickr_dir.glob("*.mat"):
        (d / f.name).symlink_to(f)
    scipy.io.savemat(d / "mirflickr25k-iall-vgg.mat", {"XAll": np.random.default_rng(0).random((20015, 4), dtype=np.float32)})
    out = prepare("mirflickr25k", d, tmp_path / "ds", progress=False, log=lambda *_: None)
    results = verify(out)
    assert all(ok for _, ok, _ in results), results
    s = load_dataset(out).summary()
    assert s["split"] == {"train": 5000, "validation": 500, "query": 2000, "database": 18015}
    assert {c for c, _, _ in results} >= {"standard items", "standard labels", "standard text_dim"}


# ------------------------------------------------------------------ bad input: one message each, nothing left


def _nothing_left(tmp_path, name="ds"):
    return not (tmp_path / name).exists() and not list(tmp_path.glob(f".{name}.partial"))


def test_wrong_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no im\\*.jpg images|no image folder"):
        prepare("mirflickr25k", tmp_path / "empty", tmp_path / "ds", **SMALL)
    with pytest.raises(DataError, match="not found"):
        prepare("mirflickr25k", tmp_path / "nope", tmp_path / "ds", **SMALL)
    assert _nothing_left(tmp_path)


def test_missing_file(tmp_path):
    fakes.make_mirflickr(tmp_path / "raw")
    (tmp_path / "raw" / "mirflickr25k_annotations_v080" / "dog.txt").unlink()
    with pytest.raises(DataError, match="dog.txt: missing annotation file"):
        prepare("mirflickr25k", tmp_path / "raw", tmp_path / "ds", **SMALL)
    assert _nothing_left(tmp_path)


def test_wrong_keys_and_count_mismatch(tmp_path):
    _community(tmp_path / "bad", keys=("foo", "bar", "baz"))
    with pytest.raises(DataError, match="no image folder|no im"):
        prepare("mirflickr25k", tmp_path / "bad", tmp_path / "ds", **SMALL)
    _community(tmp_path / "mat")
    with pytest.raises(DataError, match="items: expected 20,015, found 30; labels: expected 24, found 4; text_dim: expected 1,386, found 5"):
        prepare("mirflickr25k", tmp_path / "mat", tmp_path / "ds", progress=False, log=lambda *_: None)
    scipy.io.savemat(tmp_path / "mat" / "tags.mat", {"YAll": np.zeros((29, 5))})
    with pytest.raises(DataError, match="29 text rows but 30 label rows"):
        prepare("mirflickr25k", tmp_path / "mat", tmp_path / "ds", **SMALL)
    assert _nothing_left(tmp_path)


def test_archive_entry_escaping_its_folder(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("mirflickr/im1.jpg", b"x")
        f.writestr("../escaped.txt", b"gotcha")
    with pytest.raises(DataError, match="'../escaped.txt' escapes its folder"):
        prepare("mirflickr25k", z, tmp_path / "out" / "ds", **SMALL)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "escaped.txt").exists()
    assert not list((tmp_path / "out").glob(".ds.*"))
    assert not (tmp_path / "out" / "ds").exists()


def test_prepare_from_archive(tmp_path, clip_image):
    fakes.make_iapr(tmp_path / "raw")
    import shutil

    arc = shutil.make_archive(str(tmp_path / "iapr"), "gztar", tmp_path, "raw")
    ds = load_dataset(prepare("iaprtc12", arc, tmp_path / "ds", image_featurizer=clip_image, **SMALL))
    assert ds.data.n == 3


def test_safe_extract_refuses_links(tmp_path):
    import tarfile

    src = tmp_path / "src"
    src.mkdir()
    (src / "link").symlink_to("/etc/passwd")
    with tarfile.open(tmp_path / "a.tar", "w") as t:
        t.add(src / "link", arcname="data/link")
    with pytest.raises(DataError, match="escapes its folder \\(a link\\)"):
        safe_extract(tmp_path / "a.tar", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_verify_detects_a_changed_file(tmp_path):
    _community(tmp_path / "mat")
    out = prepare("mirflickr25k", tmp_path / "mat", tmp_path / "ds", **SMALL)
    lab = np.load(out / "labels.npy")
    lab[0, 0] ^= 1
    np.save(out / "labels.npy", lab)
    bad = [c for c, ok, _ in verify(out) if not ok]
    assert "file labels.npy" in bad
    meta = json.loads((out / "meta.json").read_text())
    assert "labels.npy" in meta["files"]


def test_unknown_dataset_and_protocol(tmp_path):
    with pytest.raises(DataError, match="did you mean 'mirflickr25k'"):
        prepare("mirflickr", tmp_path, tmp_path / "ds", **SMALL)
    with pytest.raises(DataError, match="unknown protocol 'paper'; known: unsupervised, ugach"):
        get_spec("mirflickr25k").split(100, protocol="paper")


def test_vgg19_needs_torchvision_or_says_so():
    from crossmodal.features import make_featurizer

    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(DataError, match="need torchvision.*vision"):
            make_featurizer("image", "vgg19")
        return
    from crossmodal.features.models import VGG19Featurizer  # ImageNet weights are not on this machine

    f = VGG19Featurizer(random_init=True, device="cpu")
    assert f.transform([np.zeros((40, 50, 3), np.uint8)]).shape == (1, 4096)


def test_hf_model_not_in_cache_is_one_clear_error(tmp_path):
    from crossmodal.features import make_featurizer

    with pytest.raises(DataError, match="cannot load.*--allow-download"):
        make_featurizer("text", "hf", model=str(tmp_path / "no-such-model"))


class Recorder:
    """Records the images it is given; features = mean colour."""

    dim = 3

    def __init__(self):
        self.seen = []

    def transform(self, batch):
        self.seen.extend(np.asarray(b) for b in batch)
        return np.stack([np.asarray(b, np.float32).reshape(-1, 3).mean(0) for b in batch])

    def to_dict(self):
        return {"kind": "pixels", "size": 8, "pool": 1}


def test_raw_images_from_a_v73_iall_file_keep_their_orientation(tmp_path):
    """IAll is MATLAB N x 3 x H x W; HDF5 stores it reversed (W, H, 3, N)."""
    import h5py

    n, H, W = 5, 6, 4
    imgs = np.zeros((n, H, W, 3), np.uint8)
    imgs[:, : H // 2, :, 0] = 255  # top half red
    imgs[:, :, : W // 2, 2] = np.arange(n)[:, None, None] * 10  # left half blue, by item
    d = tmp_path / "mat"
    d.mkdir()
    with h5py.File(d / "x-iall.mat", "w") as f:
        f["IAll"] = imgs.transpose(0, 3, 1, 2).T  # MATLAB (N, 3, H, W) as HDF5 writes it
    rng = np.random.default_rng(0)
    scipy.io.savemat(d / "y.mat", {"YAll": (rng.random((n, 3)) < 0.5).astype(float)})
    scipy.io.savemat(d / "l.mat", {"LAll": np.eye(n, 2, dtype=np.uint8) + np.eye(n, 2, -2, dtype=np.uint8) + np.eye(n, 2, -3, dtype=np.uint8)})
    rec = Recorder()
    out = prepare("mirflickr25k", d, tmp_path / "ds", image_featurizer=rec, chunk=2, **{**SMALL, "n_query": 1})
    assert len(rec.seen) == n
    for i, im in enumerate(rec.seen):
        np.testing.assert_array_equal(im, imgs[i])
    assert load_dataset(out).data.image.shape == (n, 3)
    with pytest.raises(DataError, match="only raw images \\(IAll\\) found; choose --image-features"):
        prepare("mirflickr25k", d, tmp_path / "ds2", **SMALL)


def test_image_lists_become_an_image_only_dataset(tmp_path, clip_image, capsys, tiny_clip):
    root = tmp_path / "raw"
    for i in range(8):
        fakes._jpeg(root / "img" / f"{i}.jpg", i)
    (root / "database.txt").write_text("".join(f"img/{i}.jpg {i % 2} {1 - i % 2} 1\n" for i in range(6)))
    (root / "test.txt").write_text("img/6.jpg 1 0 0\nimg/7.jpg 0 1 0\n")
    (root / "train.txt").write_text("img/0.jpg 0 1 1\nimg/1.jpg 1 0 1\nimg/2.jpg 0 1 1\n")
    lists = dict(query_list="test.txt", database_list="database.txt", progress=False)
    options = PrepareOptions("imagelist", root, tmp_path / "ds", train_list="train.txt", n_validation=2, **lists)
    out = prepare_image_lists(options, image_featurizer=clip_image, log=lambda *_: None)
    ds = load_dataset(out)
    assert ds.data.text is None and ds.data.n == 8 and ds.data.labels.shape == (8, 3)
    assert ds.split.query.tolist() == [6, 7] and ds.split.train.tolist() == [0, 1, 2]
    assert set(ds.split.validation) <= {3, 4, 5} and len(ds.split.validation) == 2
    assert ds.data.labels[6].tolist() == [1, 0, 0]
    (root / "bad.txt").write_text("img/0.jpg 1 1 1\n")  # same image, other labels
    with pytest.raises(DataError, match="different labels in different lists"):
        prepare_image_lists(PrepareOptions("imagelist", root, tmp_path / "ds2", train_list="bad.txt", **lists),
                            image_featurizer=clip_image, log=lambda *_: None)
    from crossmodal.runs import train_run

    run = train_run("itq", str(out), 8, out=tmp_path / "runs", tracker="none", log=lambda *_: None)
    assert (run / "report.json").is_file()


def test_prepare_options_from_the_cli_arguments():
    """Every `datasets prepare` argument lands in its PrepareOptions field (min-tag-count ->
    min_count, allow-count-mismatch -> not strict_counts); python -m data_prep.NAME passes the name."""
    import argparse

    from crossmodal.cli.prepare import add_prepare_arguments

    p = argparse.ArgumentParser()
    add_prepare_arguments(p)
    args = p.parse_args(["coco", "--root", "r", "--out", "o", "--image-features", "pixels", "--pixel-size", "32",
                         "--text-features", "clip", "--image-model", "im", "--text-model", "tm", "--allow-download",
                         "--protocol", "ugach", "--seed", "3", "--query", "4", "--train", "5", "--validation", "6",
                         "--validation-fraction", "0.2", "--min-tag-count", "7", "--device", "cpu", "--batch-size",
                         "8", "--allow-count-mismatch", "--overwrite", "--query-list", "q", "--database-list", "d",
                         "--train-list", "t"])
    o = PrepareOptions.from_args(args)
    assert o == PrepareOptions(
        "coco", "r", "o", image_features="pixels", text_features="clip", image_model="im", text_model="tm",
        pixel_size=32, allow_download=True, device="cpu", batch_size=8, protocol="ugach", seed=3, n_query=4, n_train=5,
        n_validation=6, validation_fraction=0.2, min_count=7, strict_counts=False, overwrite=True, query_list="q",
        database_list="d", train_list="t")
    d = argparse.ArgumentParser()
    add_prepare_arguments(d, "mirflickr25k")
    o = PrepareOptions.from_args(d.parse_args(["--root", "r", "--out", "o"]), "mirflickr25k")
    assert o == PrepareOptions("mirflickr25k", "r", "o")  # the defaults of both agree


def test_community_features_of_a_raw_dataset_is_one_clear_error(tmp_path):
    fakes.make_mirflickr(tmp_path / "raw")
    with pytest.raises(DataError, match="--image-features community needs the community .mat files"):
        prepare("mirflickr25k", tmp_path / "raw", tmp_path / "ds", image_features="community", min_count=2, **SMALL)
    assert _nothing_left(tmp_path)


def test_image_lists_need_both_lists(tmp_path, capsys):
    code = main(["datasets", "prepare", "imagelist", "--root", str(tmp_path), "--out", str(tmp_path / "ds"),
                 "--query-list", "test.txt"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == ("crossmodal: error: imagelist needs --query-list and --database-list "
                                         "(and optionally --train-list)")
    assert not (tmp_path / "ds").exists()
