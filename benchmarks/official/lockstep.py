"""Helpers of the lock-step checks (``cirh_lockstep.py``, ``ucmfh_lockstep.py``): a released run and
a port run on one random stream, compared weight by weight and code by code.

:func:`renamed` maps a state dict between the released module names and the port's;
:func:`max_difference` is the largest absolute weight difference of two state dicts with the same
keys; :func:`port_epoch` trains the port's epoch on given batches; :func:`weight_differences`
compares each released network with the port's tower; :func:`compare_codes` prints, per code matrix, the share of equal bits, the distinct codes and
the bit balance of both sides, then both sides' mAP@all (crossmodal's
:func:`~crossmodal.retrieval.metrics.mean_average_precision`).
"""

from __future__ import annotations

import numpy as np


def renamed(state: dict, names: dict) -> dict:
    """``state`` (a state dict) with each module prefix replaced by ``names[prefix]``."""
    out = {}
    for key, value in state.items():
        prefix, leaf = key.rsplit(".", 1)
        out[f"{names[prefix]}.{leaf}"] = value
    return out


def max_difference(a: dict, b: dict) -> float:
    """The largest ``|a[k] - b[k]|`` over the keys of ``a`` (state dicts of tensors)."""
    return max(float((w - b[k]).abs().max()) for k, w in a.items())


def port_epoch(port, epoch: int, batches: list) -> None:
    """Train the port's ``epoch`` on ``batches`` (index tensors, the ones the released side got)
    instead of its own shuffle."""
    port._epoch_batches = lambda n, b, _bs=batches: _bs
    try:
        port._run_epoch(epoch)
    finally:
        del port._epoch_batches


def weight_differences(pairs, port) -> dict:
    """``{tower: largest weight difference}`` for ``pairs`` of ``(released module, the port's
    tower name, released -> port module names)``."""
    return {name: max_difference(renamed(net.state_dict(), names), port.towers[name].state_dict())
            for net, name, names in pairs}


def compare_codes(codes: dict, d: dict, bits: int) -> dict:
    """Print the comparison of ``codes = {"released": C, "port": C}`` (each ``C`` maps ``qi, qt,
    di, dt`` to ``(N, bits)`` {0, 1} codes of the query / database images / texts of the export
    ``d``); returns ``{side: (mAP i2t, mAP t2i)}``."""
    from crossmodal.retrieval.codes import pack
    from crossmodal.retrieval.metrics import mean_average_precision

    r, p = codes["released"], codes["port"]
    for k in r:
        balance = [float(np.abs(2.0 * c[k].mean(0) - 1).mean()) for c in (r, p)]
        print(f"{k}: equal bits {float((r[k] == p[k]).mean()):.4f}, distinct codes released/port "
              f"{len(np.unique(r[k], axis=0))}/{len(np.unique(p[k], axis=0))}, "
              f"bit imbalance released/port {balance[0]:.3f}/{balance[1]:.3f}")
    out = {}
    for side, c in codes.items():
        pk = {k: pack(v) for k, v in c.items()}
        i2t = mean_average_precision(pk["qi"], pk["dt"], d["L_te"], d["L_db"], bits)
        t2i = mean_average_precision(pk["qt"], pk["di"], d["L_te"], d["L_db"], bits)
        print(f"{side}: mAP@all i2t {i2t:.4f} t2i {t2i:.4f}", flush=True)
        out[side] = (i2t, t2i)
    return out
