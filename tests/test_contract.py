"""One contract over every registered method (scikit-learn's ``parametrize_with_checks`` idea).

Every check is one test function parametrised over ``available_methods()``; the test id is the
method name, so a method is covered the day it registers. The checks: fit / encode shapes and
dtype for each modality the method has (and ``encode_pair`` where ``unified_codes``); same seed
-> same codes; another seed -> other codes (unless the method is deterministic by design, then
the same codes); save -> ``load_hasher`` -> same codes; an interrupted fit resumed from its
checkpoints gives the codes of an uninterrupted one (methods with ``epochs``); every declared
``Param`` documented, its default valid, a value outside its check a one-line ``ConfigError``
naming the key; bad input a one-line ``DataError``; training labels reach supervised methods
(``uses_labels``) only and do not change an unsupervised method's codes.

Data: 240 training and 40 query pairs of a 4-class mixture (image ``(N, 32)``, text ``(N, 24)``
float32, one or two labels per item); the queries against the training pairs are the validation
set of every fit (model selection as ``crossmodal train`` does it). Config: :func:`small_config`
shrinks whichever of the keys in ``SMALL`` a method declares (epochs, widths, batch, iterations,
sample counts), so a new method needs no entry here unless it declares an unusual cost knob (then
add it to ``EXTRA``). About 20 s on one core.
Bits: 12, so codes take 2 bytes with 4 unused trailing bits, which must be 0.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from crossmodal.data import PairedData
from crossmodal.errors import ConfigError, DataError
from crossmodal.methods import Choice, Range, ValidationSet, available_methods, get_method, load_hasher

BITS = 12
N_TRAIN, N_QUERY, DIM_IMAGE, DIM_TEXT, N_CLASSES = 240, 40, 32, 24, 4
METHODS = available_methods()

# Keys whose defaults are sized for real benchmarks; a method gets the value here (numbers: the
# smaller of this and its default) for each of them it declares.
SMALL = {
    "epochs": 2, "pretrain_epochs": 1, "hidden": 16, "decoder_hidden": 16, "batch_size": 64, "iters": 5,
    "sparse_iters": 10, "n_atoms": 32, "n_anchors": 20, "n_negatives": 64, "n_neighbours": 3,
    "n_candidates": 50, "n_clusters": 4, "n_threshold_pairs": 5000, "dsdw_fit_batches": 3,
    "progress": False, "device": "cpu",
}
EXTRA: dict[str, dict] = {}  # per-method additions, only where the generic shrink is not enough

# Methods that are not trained: skipped by every check that needs a fitted model.
NOT_TRAINED = {
    "external": "holds codes imported with `crossmodal import-codes`; it has no model to fit",
}
# Methods whose fit draws nothing at random on this data: another seed must give the same codes.
SEED_FREE = {
    "cvh": "generalised eigenproblem, no random step",
    "imh": "eigenproblem on all pairs (fewer than max_train: no random subset)",
    "pcah": "PCA with bits <= feature width (no random lift)",
    "sh": "PCA and analytical eigenfunctions, no random step",
}
# Methods allowed to declare numeric keys without any Range or Choice (none today).
NO_RANGES: set = set()
# (check, method) -> the bug a check exposes, until the method is fixed (strict xfail).
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def methods_for(check: str, trained: bool = True) -> list:
    """``METHODS`` as pytest params: ids are the names; known bugs are strict xfails; methods
    without a model are skipped, with the reason, by checks that need one."""
    out = []
    for name in METHODS:
        marks = []
        if (check, name) in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[check, name]))
        if trained and name in NOT_TRAINED:
            marks.append(pytest.mark.skip(reason=NOT_TRAINED[name]))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def small_config(cls) -> dict:
    """The keys of ``SMALL`` that ``cls`` declares, typed as declared, then ``EXTRA``."""
    out = {}
    for p in cls.params:
        if p.name not in SMALL:
            continue
        want = SMALL[p.name]
        if p.type is list:
            out[p.name] = [want]
        elif p.type in (int, float) and isinstance(p.default, (int, float)):
            out[p.name] = min(p.default, want)
        else:
            out[p.name] = want
    return {**out, **EXTRA.get(cls.name, {})}


def make(name: str, seed: int = 0):
    cls = get_method(name)
    return cls(BITS, seed=seed, **small_config(cls))


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_QUERY
    labels = np.eye(N_CLASSES, dtype=np.uint8)[rng.integers(0, N_CLASSES, n)]
    second = rng.random(n) < 0.2
    labels[second, rng.integers(0, N_CLASSES, int(second.sum()))] = 1
    z = labels + 0.3 * rng.standard_normal((n, N_CLASSES))
    image = z @ rng.standard_normal((N_CLASSES, DIM_IMAGE)) + 0.5 * rng.standard_normal((n, DIM_IMAGE))
    text = z @ rng.standard_normal((N_CLASSES, DIM_TEXT)) + 0.5 * rng.standard_normal((n, DIM_TEXT))
    image, text = image.astype(np.float32), text.astype(np.float32)
    train = PairedData(image=image[:N_TRAIN], text=text[:N_TRAIN], labels=labels[:N_TRAIN])
    unlabelled = PairedData(image=image[:N_TRAIN], text=text[:N_TRAIN])
    query = PairedData(image=image[N_TRAIN:], text=text[N_TRAIN:], labels=labels[N_TRAIN:])
    return SimpleNamespace(train=train, unlabelled=unlabelled, query=query)


def validation(pairs, h) -> ValidationSet:
    """Model selection data for ``h``: the queries against the training pairs, in the
    directions ``h`` can score (I->I for image-only methods)."""
    dirs = ("i2t", "t2i") if "text" in h.modalities else ("i2i",)
    return ValidationSet(query=pairs.query, database=pairs.train, directions=dirs)


def fit(h, pairs, tracker=None, labelled=None):
    """``h`` fitted on the training pairs (labelled only for a supervised method, unless
    ``labelled`` says otherwise), with model selection on the validation set."""
    train = pairs.train if (h.uses_labels if labelled is None else labelled) else pairs.unlabelled
    assert h.fit(train, valid=validation(pairs, h), tracker=tracker) is h, "fit must return the hasher"
    return h


@pytest.fixture(scope="module")
def fitted(pairs):
    """``fitted(name, seed)``: the method fitted by :func:`fit`, once per module."""
    cache = {}

    def get(name: str, seed: int = 0):
        if (name, seed) not in cache:
            cache[name, seed] = fit(make(name, seed), pairs)
        return cache[name, seed]

    return get


def all_codes(h, q) -> dict:
    """Codes of ``q`` for each modality ``h`` has, and the pair codes where it has them."""
    out = {m: h.encode(m, getattr(q, m)) for m in h.modalities}
    if h.unified_codes:
        out["pair"] = h.encode_pair(q.image, q.text)
    return out


def assert_same_codes(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{what}: {key} codes differ")


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


# ------------------------------------------------------------------ fit and encode


@pytest.mark.parametrize("name", methods_for("shapes"))
def test_fit_encode_shapes_and_dtype(name, pairs, fitted):
    h = fitted(name)
    cls = type(h)
    want_modalities = ("image",) if cls.modalities == ("image",) else ("image", "text")
    assert h.fitted and h.modalities == want_modalities
    q = pairs.query
    for m in h.modalities:
        codes = h.encode(m, getattr(q, m))
        assert codes.shape == (N_QUERY, 2) and codes.dtype == np.uint8, (m, codes.shape, codes.dtype)
        real = h.project(m, getattr(q, m))
        assert real.shape == (N_QUERY, BITS), (m, real.shape)
        # packed big-endian with sign(0) = +1, unused trailing bits 0 (crossmodal.retrieval.codes)
        np.testing.assert_array_equal(codes, np.packbits(real >= 0, axis=1))
        assert not np.any(codes[:, 1] & 0x0F)
        np.testing.assert_array_equal(getattr(h, f"encode_{m}")(getattr(q, m)), codes)
        assert 0 < np.unpackbits(codes, axis=1, count=BITS).mean() < 1, f"{m}: every bit of every code equal"
    if "text" not in h.modalities:
        with pytest.raises(DataError) as e:
            h.encode_text(q.text)
        assert "text" in one_line(e)
    if cls.unified_codes:
        pair = h.encode_pair(q.image, q.text)
        assert pair.shape == (N_QUERY, 2) and pair.dtype == np.uint8
        with pytest.raises(DataError) as e:
            h.encode_pair(q.image, q.text[:-1])
        one_line(e)
    elif "text" in h.modalities:
        with pytest.raises(DataError) as e:
            h.encode_pair(q.image, q.text)
        assert "unified" in one_line(e)


@pytest.mark.parametrize("name", methods_for("text_optional"))
def test_image_only_data(name, pairs):
    """On data without text, a ``text_optional`` or image-only method hashes images; any other
    method refuses it with one line."""
    cls = get_method(name)
    images = PairedData(image=pairs.train.image, labels=pairs.train.labels)
    h = make(name)
    if cls.text_optional or cls.modalities == ("image",):
        h.fit(images)
        assert h.modalities == ("image",)
        assert h.encode_image(pairs.query.image).shape == (N_QUERY, 2)
    else:
        with pytest.raises(DataError) as e:
            h.fit(images)
        assert "text" in one_line(e)


# ------------------------------------------------------------------ seeds


@pytest.mark.parametrize("name", methods_for("same_seed"))
def test_same_seed_same_codes(name, pairs, fitted):
    again = fit(make(name, seed=0), pairs)
    assert_same_codes(all_codes(fitted(name), pairs.query), all_codes(again, pairs.query), "refit with seed 0")


@pytest.mark.parametrize("name", methods_for("other_seed"))
def test_another_seed(name, pairs, fitted):
    a, b = all_codes(fitted(name, 0), pairs.query), all_codes(fitted(name, 1), pairs.query)
    if name in SEED_FREE:
        assert_same_codes(a, b, f"seed 0 vs 1 ({SEED_FREE[name]})")
    else:
        assert any(not np.array_equal(a[k], b[k]) for k in a), "seeds 0 and 1 gave identical codes"


# ------------------------------------------------------------------ persistence


@pytest.mark.parametrize("name", methods_for("save_load"))
def test_save_load_same_codes(name, pairs, fitted, tmp_path):
    import json

    h = fitted(name)
    h.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "hasher.json").read_text(encoding="utf-8"))["method"] == name
    back = load_hasher(tmp_path / "m")
    assert type(back) is type(h)
    assert (back.bits, back.seed, back.config, back.dims) == (h.bits, h.seed, h.config, h.dims)
    assert back.modalities == h.modalities
    assert_same_codes(all_codes(h, pairs.query), all_codes(back, pairs.query), "after save and load")


class Interrupt:
    """A tracker that stops training (as Ctrl-C would) once epoch ``at`` is logged, which is
    after its checkpoint is written."""

    def __init__(self, at: int):
        self.at = at

    def log(self, rec, step=None):
        if rec.get("epoch") == self.at and "event" not in rec:
            raise KeyboardInterrupt


class Recorder:
    def __init__(self):
        self.records = []

    def log(self, rec, step=None):
        self.records.append(dict(rec))


@pytest.mark.parametrize("name", methods_for("resume"))
def test_resume_after_interruption_gives_the_same_codes(name, pairs, fitted, tmp_path):
    cls = get_method(name)
    if "epochs" not in cls.defaults:
        pytest.skip("no epochs: trained in one call, nothing to resume")
    assert hasattr(cls, "checkpoint_dir"), f"{name} trains in epochs but has no checkpoint_dir to resume from"
    killed = make(name)
    killed.checkpoint_dir = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        fit(killed, pairs, tracker=Interrupt(at=1))
    assert any((tmp_path / "checkpoints").iterdir()), "nothing checkpointed before the interruption"
    log = Recorder()
    resumed = make(name)
    resumed.checkpoint_dir = tmp_path / "checkpoints"
    fit(resumed, pairs, tracker=log)
    assert {"event": "resume", "epoch": 1} in log.records
    assert [r["epoch"] for r in log.records if "event" not in r] == [2], "epochs run again after resuming"
    full = fitted(name)
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in full.history]
    assert_same_codes(all_codes(full, pairs.query), all_codes(resumed, pairs.query), "resumed vs uninterrupted")


# ------------------------------------------------------------------ declared parameters


def outside(p):
    """A value of ``p``'s type that its Range or Choice refuses, or None when it has neither."""
    check = p.check
    if isinstance(check, Choice):
        return "no-such-option"
    if not isinstance(check, Range):
        return None
    if check.low is not None:
        bad = check.low if check.low_open else check.low - 1
    elif check.high is not None:
        bad = check.high if check.high_open else check.high + 1
    else:
        return None
    kind = p.item if p.type is list else p.type
    bad = int(bad) if kind is int else float(bad)
    return [bad] if p.type is list else bad


@pytest.mark.parametrize("name", methods_for("params", trained=False))
def test_declared_params_documented_with_valid_defaults(name):
    cls = get_method(name)
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names)), f"a key declared twice: {names}"
    assert list(cls.defaults) == names
    h = cls(BITS)
    for p in cls.params:
        assert isinstance(p.help, str) and len(p.help.strip()) >= 5, f"{p.name}: no help text"
        assert p.convert(p.default, name) == p.default, f"{p.name}: default {p.default!r} fails its own check"
        assert h.config[p.name] == p.default


@pytest.mark.parametrize("name", methods_for("params", trained=False))
def test_values_outside_a_check_are_one_line_config_errors(name):
    cls = get_method(name)
    checked = 0
    for p in cls.params:
        bad = outside(p)
        if bad is None:
            continue
        checked += 1
        with pytest.raises(ConfigError) as e:
            cls(BITS, **{p.name: bad})
        assert p.name in one_line(e), f"{p.name}={bad!r}: the error does not name the key"
    for p in cls.params:
        if p.type in (int, float, bool):
            with pytest.raises(ConfigError) as e:
                cls(BITS, **{p.name: "not-a-number"})
            assert p.name in one_line(e)
    with pytest.raises(ConfigError) as e:
        cls(BITS, no_such_key=1)
    assert "no_such_key" in one_line(e)
    assert checked or not any(p.type in (int, float) for p in cls.params) or name in NO_RANGES, \
        f"{name} declares numbers but no Range or Choice on any key"


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("name", methods_for("before_fit", trained=False))
def test_encode_before_fit_is_a_one_line_data_error(name, pairs):
    h = make(name)
    for m in h.modalities:
        with pytest.raises(DataError) as e:
            h.encode(m, getattr(pairs.query, m))
        assert "fit" in one_line(e)


@pytest.mark.parametrize("name", methods_for("fit_input", trained=False))
def test_fit_refuses_what_is_not_paired_data(name, pairs):
    for bad in (pairs.train.image, {"image": pairs.train.image, "text": pairs.train.text}, None):
        with pytest.raises(DataError) as e:
            make(name).fit(bad)
        assert "PairedData" in one_line(e)


@pytest.mark.parametrize("name", methods_for("labels"))
def test_labels_train_supervised_methods_only(name, pairs, fitted):
    """A supervised method refuses unlabelled pairs; an unsupervised one (fitted on unlabelled
    pairs everywhere else here) gives the same codes when the pairs carry labels."""
    if not get_method(name).uses_labels:
        labelled = fit(make(name), pairs, labelled=True)
        assert_same_codes(all_codes(fitted(name), pairs.query), all_codes(labelled, pairs.query),
                          "unsupervised: with vs without training labels")
        return
    with pytest.raises(DataError) as e:
        make(name).fit(pairs.unlabelled)
    assert "label" in one_line(e)


@pytest.mark.parametrize("name", methods_for("encode_input"))
def test_encode_refuses_bad_features(name, pairs, fitted):
    h = fitted(name)
    for m in h.modalities:
        X = getattr(pairs.query, m)
        nan = X.copy()
        nan[3, 1] = np.nan
        cases = {"wrong width": (X[:, :-1], str(X.shape[1] - 1)), "NaN": (nan, "row 3"),
                 "1-D": (X[0], "2-D"), "inf": (np.where(np.arange(X.shape[1]) == 0, np.inf, X), "infinite")}
        for case, (bad, word) in cases.items():
            with pytest.raises(DataError) as e:
                h.encode(m, bad)
            msg = one_line(e)
            assert word in msg, f"{m}, {case}: {msg!r} does not say {word!r}"
    if h.unified_codes:
        with pytest.raises(DataError) as e:
            h.encode_pair(pairs.query.image[:, :-1], pairs.query.text)
        one_line(e)
