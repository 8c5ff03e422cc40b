import numpy as np
import pytest

from crossmodal.errors import DataError
from crossmodal.retrieval import evaluate_codes, hamming_distance, pack, sign_bits, unpack
from crossmodal.retrieval.labels import relevance
from tests.reference import brute_metrics, expected_ap_over_ties, hamming


def test_sign_zero_is_plus_one():
    assert sign_bits(np.array([[-1.0, 0.0, 2.0, -0.0]])).tolist() == [[0, 1, 1, 1]]


@pytest.mark.parametrize("bits", [1, 7, 8, 9, 16, 63, 64, 65, 130])
def test_pack_unpack_round_trip(rng, bits):
    b = rng.integers(0, 2, size=(11, bits)).astype(np.uint8)
    p = pack(b)
    assert p.shape == (11, (bits + 7) // 8) and p.dtype == np.uint8
    assert np.array_equal(unpack(p, bits), b)


def test_bit_order_is_big_endian():
    bits = np.zeros((1, 16), dtype=np.uint8)
    bits[0, 0] = 1  # first bit -> most significant bit of byte 0
    bits[0, 15] = 1  # last bit -> least significant bit of byte 1
    assert pack(bits).tolist() == [[128, 1]]


@pytest.mark.parametrize("bits", [5, 64, 100])
def test_hamming_distance_matches_brute_force(rng, bits):
    a = rng.integers(0, 2, size=(7, bits))
    b = rng.integers(0, 2, size=(13, bits))
    d = hamming_distance(pack(a), pack(b))
    ref = np.array([[hamming(x, y) for y in b] for x in a])
    assert np.array_equal(d, ref)


def _random_case(rng, nq, ndb, bits, classes, empty_rows=()):
    qb = rng.integers(0, 2, size=(nq, bits))
    db = rng.integers(0, 2, size=(ndb, bits))
    ql = (rng.random((nq, classes)) < 0.3).astype(np.uint8)
    dl = (rng.random((ndb, classes)) < 0.3).astype(np.uint8)
    for r in empty_rows:
        ql[r] = 0  # no relevant item at all
    return qb, db, ql, dl


@pytest.mark.parametrize("ndb,k", [(1, 1), (1, 5), (40, 10), (40, 100), (200, 37)])
def test_metrics_match_brute_force_with_many_ties(rng, ndb, k):
    bits = 4  # 4 bits: distances 0..4, so almost every item ties with others
    qb, db, ql, dl = _random_case(rng, 25, ndb, bits, 5, empty_rows=(0, 3))
    ref = brute_metrics(qb, db, ql, dl, k)
    res = evaluate_codes(pack(qb), pack(db), ql, dl, bits, ks=(k,), return_per_query=True, batch_elems=64)
    assert np.allclose(res["per_query"]["AP@all"], ref["ap"], atol=1e-12)
    assert np.allclose(res["per_query"][f"AP@{k}"], ref["apk"], atol=1e-12)
    assert res["mAP@all"] == pytest.approx(ref["ap"].mean(), abs=1e-12)
    assert res[f"mAP@{k}"] == pytest.approx(ref["apk"].mean(), abs=1e-12)
    assert res[f"P@{k}"] == pytest.approx(ref["pk"].mean(), abs=1e-12)
    assert res["P@H<=2"] == pytest.approx(ref["pr"].mean(), abs=1e-12)
    # queries with no relevant item score 0 and are counted
    assert res["per_query"]["AP@all"][0] == 0.0 and res["n_query"] == 25
    res_min = evaluate_codes(pack(qb), pack(db), ql, dl, bits, ks=(k,), norm="min")
    assert res_min[f"mAP@{k}"] == pytest.approx(ref["apk_min"].mean(), abs=1e-12)


def test_multilabel_relevance_shares_one_label():
    ql = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]])
    dl = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert relevance(ql, dl).tolist() == [[True, False, False], [True, True, False], [False, False, False]]


def test_tie_aware_ap_is_expectation_over_tie_orders(rng):
    for _ in range(30):
        n = int(rng.integers(2, 7))
        bits = 3
        qb = rng.integers(0, 2, size=(1, bits))
        db = rng.integers(0, 2, size=(n, bits))
        rel = rng.random(n) < 0.5
        dl = np.stack([rel, ~rel], axis=1).astype(np.uint8)
        ql = np.array([[1, 0]], dtype=np.uint8)
        dist = [hamming(qb[0], d) for d in db]
        expected = expected_ap_over_ties(dist, rel.tolist())
        res = evaluate_codes(pack(qb), pack(db), ql, dl, bits, ks=(1,))
        assert res["mAP@all~"] == pytest.approx(expected, abs=1e-12)


def test_pr_curve_endpoints(rng):
    qb, db, ql, dl = _random_case(rng, 10, 50, 8, 4)
    res = evaluate_codes(pack(qb), pack(db), ql, dl, 8)
    pr = res["pr_curve"]
    assert len(pr["radius"]) == 9
    assert pr["recall"][-1] == pytest.approx(1.0)  # radius = bits retrieves everything
    assert np.all(np.diff(pr["recall"]) >= -1e-12)  # recall grows with the radius


def test_bad_k_and_shapes(rng):
    qb, db, ql, dl = _random_case(rng, 3, 5, 8, 2)
    with pytest.raises(DataError, match="k must be"):
        evaluate_codes(pack(qb), pack(db), ql, dl, 8, ks=(0,))
    with pytest.raises(DataError, match="packed uint8"):
        evaluate_codes(pack(qb), pack(db), ql, dl, 16)
