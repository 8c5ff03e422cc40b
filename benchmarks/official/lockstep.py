"""Helpers of the lock-step checks (``*_lockstep.py``): a released run and
a port run on one random stream, compared weight by weight and code by code.

:func:`renamed` maps a state dict between the released module names and the port's;
:func:`max_difference` is the largest absolute weight difference of two state dicts with the same
keys; :func:`port_epoch` trains the port's epoch on given batches; :func:`weight_differences`
compares each released network with the port's tower; :func:`train_in_lockstep` feeds a released
session and the port the port's batches epoch by epoch; :func:`code_sets` codes the export's query
and database parts on both sides; :func:`compare_codes` prints, per code matrix, the share of equal
bits, the distinct codes and the bit balance of both sides, then both sides' mAP@all (crossmodal's
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


def train_in_lockstep(rel, port, pairs, d: dict, epochs: int, every: int = 1, same_global_rng: bool = False) -> dict:
    """Train ``epochs`` epochs of the released session ``rel`` (its ``train(epoch)`` reads
    ``rel.train_loader``) and of the port on the port's batches (its seeded generator): each epoch
    the batches go to ``rel.train_loader`` as a list of ``(image, text, labels, index)``, then to
    the port. ``same_global_rng``: torch's global generator is set to the same state before each
    side's epoch (both draw the same dropout masks). Prints the largest weight difference per
    network (``pairs`` as in :func:`weight_differences`) every ``every`` epochs and after the last;
    returns the last differences (the starting ones when ``epochs`` is 0)."""
    import torch

    data = {k: torch.tensor(d[k], dtype=torch.float32) for k in ("I_tr", "T_tr", "L_tr")}
    diff = weight_differences(pairs, port)
    for epoch in range(1, epochs + 1):
        batches = port._epoch_batches(port.n_train, port.config["batch_size"])
        rel.train_loader = [(data["I_tr"][b], data["T_tr"][b], data["L_tr"][b], b) for b in batches]
        state = torch.get_rng_state()
        rel.train(epoch - 1)
        if same_global_rng:
            torch.set_rng_state(state)
        port_epoch(port, epoch, batches)
        if epoch % every == 0 or epoch == epochs:
            diff = weight_differences(pairs, port)
            print(f"epoch {epoch} ({len(batches)} batches, last {len(batches[-1])}): largest weight difference "
                  + ", ".join(f"{k} {v:.3g}" for k, v in diff.items()), flush=True)
    return diff


def code_sets(d: dict, nets: dict, port, released_codes) -> dict:
    """``{"released": C, "port": C}`` for :func:`compare_codes`: the sign codes of the export's
    query and database images and texts, from the released networks ``nets = {"image": net,
    "text": net}`` (put in eval mode; ``released_codes(modality, net, x)`` is a network's relaxed
    codes of the tensor ``x``) and from the port's ``project``."""
    import torch

    from crossmodal.retrieval.codes import sign_bits

    released, ported = {}, {}
    for net in nets.values():
        net.eval()
    with torch.no_grad():
        for p, s in (("q", "te"), ("d", "db")):
            for m, net in nets.items():
                x = torch.tensor(d[f"{m[0].upper()}_{s}"], dtype=torch.float32)
                released[f"{p}{m[0]}"] = sign_bits(released_codes(m, net, x).numpy())
                ported[f"{p}{m[0]}"] = sign_bits(np.asarray(port.project(m, x.numpy())))
    return {"released": released, "port": ported}


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
