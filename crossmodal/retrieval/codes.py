"""Binary codes: sign, pack / unpack, Hamming distances.

Conventions
-----------
* ``sign(0) = +1``: a real value ``>= 0`` becomes bit 1, a negative value bit 0.
* Codes travel as ``uint8`` arrays of shape ``(N, ceil(bits / 8))`` packed by
  :func:`numpy.packbits` in its default **big-endian** bit order: bit ``j`` of a code is
  the bit of weight ``2**(7 - j % 8)`` in byte ``j // 8``; unused trailing bits are 0.
"""

from __future__ import annotations

import numpy as np

from crossmodal.errors import DataError

MAX_BITS = 1024


def check_bits(bits: int) -> int:
    try:
        b = int(bits)
    except (TypeError, ValueError):
        raise DataError(f"bits must be a whole number, got {bits!r}") from None
    if b != bits or not 0 < b <= MAX_BITS:
        raise DataError(f"bits must be in 1..{MAX_BITS}, got {bits!r}")
    return b


def n_bytes(bits: int) -> int:
    return (int(bits) + 7) // 8


def sign_bits(x) -> np.ndarray:
    """``(N, B)`` real values -> ``(N, B)`` uint8 bits with sign(0) = +1 (bit 1)."""
    return (np.asarray(x) >= 0).astype(np.uint8)


def pack(bits01) -> np.ndarray:
    """``(N, B)`` 0/1 array -> ``(N, ceil(B/8))`` uint8, big-endian bit order."""
    b = np.asarray(bits01)
    if b.ndim != 2:
        raise DataError(f"codes: expected a 2-D (items x bits) array, got shape {b.shape}")
    return np.packbits(b.astype(np.uint8, copy=False), axis=1)


def unpack(packed, bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``(N, ceil(B/8))`` uint8 -> ``(N, B)`` uint8 0/1."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=int(bits))


def check_codes(codes, bits: int, name: str = "codes") -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 2 or c.dtype != np.uint8 or c.shape[1] != n_bytes(bits):
        raise DataError(
            f"{name}: expected packed uint8 codes of shape (N, {n_bytes(bits)}) for {bits} bits, "
            f"got {c.dtype} {c.shape}; pack 0/1 bits with crossmodal.retrieval.pack"
        )
    return np.ascontiguousarray(c)


def _words(packed: np.ndarray) -> np.ndarray:
    """View packed codes as uint64 words (zero-padded to a multiple of 8 bytes)."""
    n, w = packed.shape
    pad = (-w) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(np.uint64)


def hamming_distance(q, db, chunk_elems: int = 1 << 24) -> np.ndarray:
    """All-pairs Hamming distances between packed codes: ``(Nq, Ndb)``, uint8 when codes have
    at most 255 bits, else uint16.

    Works on 64-bit words with ``numpy.bitwise_count``; memory stays within
    ``chunk_elems`` words of scratch per step.
    """
    q, db = np.asarray(q, dtype=np.uint8), np.asarray(db, dtype=np.uint8)
    dtype = np.uint8 if q.shape[1] * 8 <= 255 else np.uint16
    qw, dw = _words(q), _words(db)
    nq, nw = qw.shape
    out = np.empty((nq, dw.shape[0]), dtype=dtype)
    step = max(1, chunk_elems // max(1, dw.shape[0] * nw))
    for s in range(0, nq, step):
        e = min(nq, s + step)
        acc = np.bitwise_count(qw[s:e, 0, None] ^ dw[None, :, 0])  # uint8
        if nw > 1:
            acc = acc.astype(dtype)
            for j in range(1, nw):
                acc += np.bitwise_count(qw[s:e, j, None] ^ dw[None, :, j])
        out[s:e] = acc
    return out
