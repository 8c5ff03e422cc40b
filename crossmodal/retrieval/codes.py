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


def as_words(packed: np.ndarray) -> np.ndarray:
    """View packed codes as uint64 words (zero-padded to a multiple of 8 bytes)."""
    n, w = packed.shape
    pad = (-w) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(np.uint64)


def hamming_distance(q, db, chunk_elems: int = 1 << 18) -> np.ndarray:
    """All-pairs Hamming distances between packed codes: ``(Nq, Ndb)``, uint8 when codes have
    at most 255 bits, else uint16.

    Works on 64-bit words with ``numpy.bitwise_count``, written in place into reused scratch
    of ``chunk_elems`` words (small enough to stay in the CPU cache).
    """
    q, db = np.asarray(q, dtype=np.uint8), np.asarray(db, dtype=np.uint8)
    dtype = np.uint8 if q.shape[1] * 8 <= 255 else np.uint16
    qw, dw = as_words(q), as_words(db)
    out = np.empty((qw.shape[0], dw.shape[0]), dtype=dtype)
    hamming_words_into(qw, dw, out, chunk_elems)
    return out


def hamming_words_into(qw: np.ndarray, dw: np.ndarray, out: np.ndarray, chunk_elems: int = 1 << 18) -> np.ndarray:
    """Hamming distances of ``(Nq, W)`` uint64 words against ``(Ndb, W)`` uint64 words into
    ``out`` ``(Nq, Ndb)`` uint8/uint16 (rows x columns in chunks of about ``chunk_elems``)."""
    nq, nw = qw.shape
    ndb = dw.shape[0]
    if nq == 0 or ndb == 0:
        return out
    cols = min(ndb, max(1, chunk_elems))
    rows = max(1, chunk_elems // cols)
    xor = np.empty((rows, cols), dtype=np.uint64)
    cnt = np.empty((rows, cols), dtype=np.uint8)
    dcols = [np.ascontiguousarray(dw[:, j]) for j in range(nw)]
    for c in range(0, ndb, cols):
        ce = min(ndb, c + cols)
        w = ce - c
        for s in range(0, nq, rows):
            e = min(nq, s + rows)
            x, n = xor[:e - s, :w], cnt[:e - s, :w]
            o = out[s:e, c:ce]
            for j in range(nw):
                np.bitwise_xor(qw[s:e, j, None], dcols[j][None, c:ce], out=x)
                if j == 0:
                    np.bitwise_count(x, out=o if o.dtype == np.uint8 else n)
                    if o.dtype != np.uint8:
                        o[...] = n
                else:
                    np.bitwise_count(x, out=n)
                    o += n
    return out
