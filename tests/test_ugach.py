"""UGACH: the D step, the generator's sampling, learning on toy, a resume with another config,
fidelity to the official code. (Shapes, seeds, persistence, resume: test_contract.py.)"""

import numpy as np
import pytest
import torch
from scipy import stats

from crossmodal.errors import ConfigError
from crossmodal.methods import get_method
from crossmodal.methods.ugach import UGACH
from crossmodal.methods.ugach_sampling import sample_from_scores
from crossmodal.runs import validation_set

TINY = dict(hidden=32, pretrain_epochs=1, epochs=2, batch_size=64, optimizer="adamw", lr_d=1e-3, lr_g=1e-3,
            weight_decay=1e-4, standardize="zscore", init_std=0.0, progress=False, pool_fraction=0.05)


def _fit(ds, bits=16, seed=0, ckdir=None, tracker=None, **cfg):
    h = UGACH(bits, seed=seed, **{**TINY, **cfg})
    h.checkpoint_dir = ckdir
    return h.fit(ds.part("train"), valid=validation_set(ds), tracker=tracker)


def test_d_step_lowers_its_loss_on_a_fixed_batch(rng):
    h = UGACH(16, seed=0, hidden=32, optimizer="sgd", lr_d=2.0, weight_decay=0.0, init_std=0.0, progress=False)
    h.dims = {"image": 6, "text": 4}
    h._build()
    h.X = {"image": torch.as_tensor(rng.standard_normal((40, 6)), dtype=torch.float32),
           "text": torch.as_tensor(rng.standard_normal((40, 4)), dtype=torch.float32)}
    opt = h._optim(h.D, 2.0)
    q, pos, neg = torch.arange(20), torch.arange(20), torch.arange(20, 40)
    losses = []
    for _ in range(30):
        loss = h._hinge(h.D, "image", q, pos, neg).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_generator_sampling_follows_its_softmax():
    scores = torch.tensor([[0.0, -1.0, -2.0, 1.0, -0.5, -4.0]])
    gen = torch.Generator().manual_seed(0)
    draws = sample_from_scores(scores.expand(4000, -1), 5, gen).reshape(-1)
    counts = np.bincount(draws.numpy(), minlength=6)
    p = torch.softmax(scores[0].double(), 0).numpy()
    expected = p / p.sum() * draws.numel()
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # and it is not uniform: the chi-square against uniform must reject
    assert stats.chisquare(counts, np.full(6, draws.numel() / 6)).pvalue < 1e-6


def test_ugach_learns_on_toy_and_beats_lsh(toy_small):
    from crossmodal.retrieval.evaluate import evaluate

    h = _fit(toy_small, epochs=3, pretrain_epochs=3)
    lsh = get_method("lsh")(16).fit(toy_small.part("train"))
    ours, base = evaluate(h, toy_small).results, evaluate(lsh, toy_small).results
    for d in ("i2t", "t2i"):
        assert ours[d]["mAP@all"] > base[d]["mAP@all"] + 0.05
    assert [r["epoch"] for r in h.history] == [0, 1, 2, 3]
    assert all("loss_d" in r and "score" in r for r in h.history)


def test_resume_refuses_another_config(toy_small, tmp_path):
    _fit(toy_small, epochs=1, ckdir=tmp_path / "c")
    with pytest.raises(ConfigError, match="another config"):
        _fit(toy_small, epochs=2, ckdir=tmp_path / "c", lr_d=5e-4)


def test_codes_from_generator(toy_small):
    h = _fit(toy_small, codes_from="generator", epochs=1)
    q = toy_small.part("query")
    g = h.encode_image(q.image)
    assert g.shape == (q.n, 2)
    h.config["codes_from"] = "discriminator"
    assert not np.array_equal(h.encode_image(q.image), g)


def test_bad_config():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        UGACH(16, epoch=3)
    with pytest.raises(ConfigError, match="codes_from"):
        UGACH(16, codes_from="both")
    with pytest.raises(ConfigError, match="g_temperature"):
        UGACH(16, g_temperature=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_shapes(toy_small):
    h = _fit(toy_small, device="cuda", amp=True)
    q = toy_small.part("query")
    assert h.encode_image(q.image).shape == (q.n, 2)
    assert next(h.D.parameters()).device.type == "cuda"


# -- fidelity to the official code: rates, normaliser, pre-training, protocol ---------------------------


def _paper(**over):
    from crossmodal.config import load_config_file, preset_path

    cfg = load_config_file(preset_path("ugach", "paper"), "toy")
    return {**cfg, "hidden": 16, "pretrain_epochs": 1, "epochs": 3, "progress": False, **over}


def test_paper_preset_rates_stay_constant(toy_small):
    # lr_decay_samples = 50: dozens of decay intervals pass in 3 epochs, yet the rates never move
    # (the official exponential_decay never advances: minimize() is not given global_step)
    h = UGACH(16, seed=0, **_paper(lr_decay_samples=50))
    assert h.config["lr_decay"] == 1.0 and UGACH.defaults["lr_decay"] == 1.0
    h.fit(toy_small.part("train"))
    assert h.samples_d > 20 * 50 and h.samples_g > 20 * 50
    bs = h.config["batch_size"]
    assert [r["lr_d"] for r in h.history[1:]] == [pytest.approx(0.001 * bs)] * 3
    assert [r["lr_g"] for r in h.history[1:]] == [pytest.approx(0.01 * bs)] * 3


def test_lr_decay_option_still_decays(toy_small):
    h = UGACH(16, seed=0, **_paper(lr_decay=0.9, lr_decay_samples=50)).fit(toy_small.part("train"))
    lr = [r["lr_d"] / (0.001 * h.config["batch_size"]) for r in h.history[1:]]
    assert lr[0] < 1 and lr[2] < lr[1] < lr[0]
    k = np.log(lr) / np.log(0.9)  # whole numbers of decay steps
    assert np.allclose(k, np.round(k), atol=1e-6) and k[2] >= 2 * (h.n_train * 4 // 50)


def test_sampled_normaliser_matches_a_hand_computation():
    from crossmodal.methods.ugach_sampling import reinforce_log_probs

    scores = torch.tensor([[0.0, -1.0, -3.0, -0.5], [2.0, 0.0, 1.0, -1.0]])
    pick = torch.tensor([[1, 3], [2, 2]])
    got = reinforce_log_probs(scores, pick, "sampled").exp()
    # official gen_prob: softmax over the 2 drawn items only
    p1 = np.exp(-1.0) / (np.exp(-1.0) + np.exp(-0.5))
    assert got[0].tolist() == pytest.approx([p1, 1 - p1], abs=1e-6)
    assert got[1].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)  # the same item drawn twice
    pool = reinforce_log_probs(scores, pick, "pool").exp()
    z = np.exp([0.0, -1.0, -3.0, -0.5]).sum()
    assert pool[0].tolist() == pytest.approx([np.exp(-1.0) / z, np.exp(-0.5) / z], abs=1e-6)


def test_normaliser_option_reaches_the_generator(toy_small):
    a, b = (UGACH(16, seed=0, **{**TINY, "epochs": 1, "g_normaliser": g}).fit(toy_small.part("train"))
            for g in ("pool", "sampled"))
    ga, gb = a.G.state_dict(), b.G.state_dict()
    assert not all(torch.equal(ga[k], gb[k]) for k in ga)
    da, db = a.D.state_dict(), b.D.state_dict()  # D's epoch runs before G trains: the same
    assert all(torch.equal(da[k], db[k]) for k in da)
    with pytest.raises(ConfigError, match="g_normaliser"):
        UGACH(16, g_normaliser="all")


class _ScriptedValidation:
    """Returns scripted scores and keeps a copy of the network scored at each call."""

    def __init__(self, scores):
        self.scores, self.seen, self.nets = list(scores), [], []

    def score(self, hasher):
        self.nets.append({k: v.clone() for k, v in hasher.D.state_dict().items()})
        self.seen.append(hasher._code_net)
        s = self.scores.pop(0)
        return {"score": s, "val/i2t/mAP@all": s}


def test_pretraining_keeps_the_best_validation_epoch(toy_small):
    valid = _ScriptedValidation([0.1, 0.5, 0.2, 0.3, 0.0])  # 4 pre-training epochs, then epoch 0's score
    h = UGACH(16, seed=0, **_paper(pretrain_epochs=4, epochs=0))
    h.fit(toy_small.part("train"), valid=valid)
    assert valid.seen[:4] == ["D"] * 4  # pre-training scores D's codes
    assert h.history[0]["pretrain_best_epoch"] == 2 and h.history[0]["pretrain_val_score"] == 0.5
    for k, v in h.D.state_dict().items():  # D restored to pre-training epoch 2
        assert torch.equal(v, valid.nets[1][k])
    assert not all(torch.equal(valid.nets[1][k], valid.nets[3][k]) for k in valid.nets[1])


def test_pretraining_negatives_fixed_or_resampled(toy_small, monkeypatch):
    calls = []
    orig = UGACH._pretrain_triplets
    monkeypatch.setattr(UGACH, "_pretrain_triplets", lambda self: calls.append(1) or orig(self))
    UGACH(16, seed=0, **_paper(pretrain_epochs=3, epochs=0)).fit(toy_small.part("train"))
    assert len(calls) == 2  # drawn once per direction (official: once per 1,000 epochs)
    calls.clear()
    UGACH(16, seed=0, **_paper(pretrain_epochs=3, epochs=0, pretrain_negatives="resample")).fit(toy_small.part("train"))
    assert len(calls) == 6


def _fake_mirflickr(protocol: str, n=90, seed=0):
    from crossmodal.data import Dataset, PairedData, Split

    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 4)) < 0.4).astype(np.uint8)
    labels[np.arange(n), rng.integers(0, 4, n)] = 1
    data = PairedData(image=(labels @ rng.standard_normal((4, 12)) + rng.standard_normal((n, 12))).astype(np.float32),
                      text=(labels @ rng.standard_normal((4, 6)) + 0.5 * rng.standard_normal((n, 6))).astype(np.float32),
                      labels=labels)
    split = Split.random(n, n_query=15, n_train=50, n_validation=10, seed=seed, protocol=protocol)
    return Dataset(data=data, split=split, name="mirflickr25k")


def test_protocol_note_is_one_line_and_only_on_a_mismatch(toy_small):
    from crossmodal.runs import protocol_note

    note = protocol_note("ugach", _fake_mirflickr("unsupervised"))
    assert note is not None and "\n" not in note
    assert "'unsupervised'" in note and "15000 training" in note and "--protocol ugach" in note
    assert protocol_note("ugach", _fake_mirflickr("ugach")) is None
    assert protocol_note("", _fake_mirflickr("unsupervised")) is None
    assert protocol_note("ugach", toy_small) is None  # no named protocols: nothing to compare


def test_train_run_records_the_protocol_note(tmp_path):
    import json

    from crossmodal.data import save_dataset
    from crossmodal.runs import train_run

    folder = save_dataset(_fake_mirflickr("unsupervised"), tmp_path / "mir")
    logged = []
    run = train_run("ugach", str(folder), 8, config={**TINY, "protocol": "ugach", "epochs": 1}, out=tmp_path / "runs",
                    tracker="none", log=logged.append)
    note = json.loads((run / "run.json").read_text())["protocol_note"]
    assert "'ugach'" in note
    assert json.loads((run / "report.json").read_text())["meta"]["protocol_note"] == note
    # besides the note, only the collapse check may warn (a 1-epoch run of 8 bits on 40 items)
    warnings = [m for m in logged if m.startswith("warning:") and "degenerate codes" not in m]
    assert warnings == [f"warning: {note}"]
