"""UGACH's sampling: graph positives, G's candidate pools and draws, and the REINFORCE log-probabilities.

Every draw takes an explicit torch generator (UGACH's, on its device), so a seeded run and a
resumed run draw the same items. Shapes: ``B`` queries, ``P`` pool candidates, ``S`` draws per
query, ``K`` graph neighbours per item (rows padded with -1).
"""

from __future__ import annotations

import torch

from crossmodal.errors import ConfigError


def sample_from_scores(scores: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """``n`` draws per row (with replacement) from ``softmax(scores)``: ``(B, P) -> (B, n)``.

    This is G's policy: rows whose scores are all ``-inf`` must be handled by the caller.
    """
    return torch.multinomial(torch.softmax(scores.float(), dim=1), n, replacement=True, generator=generator)


def reinforce_log_probs(scores: torch.Tensor, pick: torch.Tensor, normaliser: str = "pool") -> torch.Tensor:
    """Log-probabilities of G's drawn items for REINFORCE: ``scores (B, P) float32`` (G's
    ``-||g_q - g_c||^2 / temperature`` over the pool), ``pick (B, S) int64`` -> ``(B, S) float32``.

    ``pool``: ``log softmax`` over the whole pool (the paper's ``p(x | q)``); ``sampled``: over
    the ``S`` drawn items only, as the official code does (it feeds the drawn items alone to its
    softmax: with 2 draws ``p1 = e^s1 / (e^s1 + e^s2)``; a pair that drew the same item twice gets
    1/2 each and no gradient).
    """
    if normaliser == "pool":
        return torch.log_softmax(scores, dim=1).gather(1, pick)
    if normaliser == "sampled":
        return torch.log_softmax(scores.gather(1, pick), dim=1)
    raise ConfigError(f"g_normaliser must be pool or sampled, got {normaliser!r}")


def graph_positives(nb: torch.Tensor, counts: torch.Tensor, n: int, generator) -> torch.Tensor:
    """``n`` graph neighbours per row of ``nb (B, K) int64`` (-1 padded; ``counts (B,)`` real ones),
    without replacement while the row has enough: ``(B, n) int64``."""
    keys = torch.rand(nb.shape, generator=generator, device=nb.device)
    keys[nb < 0] = 2.0
    order = keys.argsort(dim=1)
    j = torch.arange(n, device=nb.device)[None, :] % counts[:, None]
    return nb.gather(1, order.gather(1, j))


def candidate_pool(m: int, size: int, generator) -> torch.Tensor:
    """``(size,) int64``: G's candidate pool, drawn uniformly with replacement from ``m`` items
    (on the generator's device)."""
    return torch.randint(0, m, (size,), generator=generator, device=generator.device)


def exclude_positives(logits: torch.Tensor, nb: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """G's scores ``logits (B, P)`` with the queries' graph positives (``nb (B, K)``, -1 padded)
    masked to ``-inf``; a row left with no candidate falls back to uniform scores (zeros)."""
    hit = (nb[:, :, None] == pool[None, None, :]).any(1)
    logits = logits.masked_fill(hit, float("-inf"))
    empty = torch.isinf(logits).all(1)
    return torch.where(empty[:, None], torch.zeros_like(logits), logits)
