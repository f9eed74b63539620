"""pocketsphinx's acoustic model moved towards telephone callers: an MLLR transform.

MLLR (maximum likelihood linear regression) adapts a model's Gaussian means by an affine
transform per regression class and feature stream, ``mean' = A mean + b``, estimated on
adaptation audio (``benchmarks/speech/adapt_pocketsphinx.py``: the tune split spoken by
the development voices over the development phone lines). pocketsphinx applies it when the
decoder loads (its ``mllr`` setting). The file is CMU Sphinx's text format::

    <classes>
    <streams>
    then per class, per stream: <dim>, dim rows of A, one row of b, one row of variance
    scales

:func:`read_mllr` checks a file against that shape once, at config load, so a truncated or
foreign file is refused with its line named instead of crashing a decoder process later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The feature streams of the pocketsphinx wheel's en-us model (feat.params: 1s_c_d_dd,
# svspec 0-12/13-25/26-38): cepstra, their deltas, their double deltas.
WHEEL_STREAMS = (13, 13, 13)


@dataclass(frozen=True)
class MllrTransform:
    """One (A, b) per class and stream (the variance scales are checked, not kept:
    ``mllr_solve`` adapts the means only and writes 1.0)."""

    matrices: tuple[tuple[np.ndarray, ...], ...]
    biases: tuple[tuple[np.ndarray, ...], ...]

    @property
    def streams(self) -> tuple[int, ...]:
        return tuple(len(b) for b in self.biases[0])


def read_mllr(path: Path, streams: tuple[int, ...] = WHEEL_STREAMS) -> MllrTransform:
    """The transform in ``path``; ValueError naming the line if it is not one for a model
    whose feature streams have the dimensions ``streams``."""
    try:
        lines = [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), 1)]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    rows = iter([(n, words) for n, words in lines if words])

    def row(size: int, what: str) -> np.ndarray:
        n, words = next(rows, (len(lines) + 1, []))
        if len(words) != size:
            raise ValueError(f"{path}, line {n}: {what}: expected {size} numbers, "
                             f"found {len(words)}")
        try:
            values = np.array([float(w) for w in words])
        except ValueError:
            raise ValueError(f"{path}, line {n}: {what}: not numbers") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{path}, line {n}: {what}: not finite")
        return values

    def whole(what: str) -> int:
        value = float(row(1, what)[0])
        if not value.is_integer():
            raise ValueError(f"{path}: {what}: {value:g} is not a whole number")
        return int(value)

    classes = whole("number of classes")
    count = whole("number of streams")
    if classes < 1 or count != len(streams):
        raise ValueError(f"{path}: {classes} classes of {count} streams; the model has "
                         f"{len(streams)} streams")
    matrices, biases = [], []
    for c in range(classes):
        per_stream_a, per_stream_b = [], []
        for s, dim in enumerate(streams):
            where = f"class {c} stream {s}"
            if whole(f"{where}: dimension") != dim:
                raise ValueError(f"{path}: {where}: the model's stream has {dim} dimensions")
            per_stream_a.append(np.stack([row(dim, f"{where}: matrix") for _ in range(dim)]))
            per_stream_b.append(row(dim, f"{where}: bias"))
            row(dim, f"{where}: variance scales")
        matrices.append(tuple(per_stream_a))
        biases.append(tuple(per_stream_b))
    extra = next(rows, None)
    if extra is not None:
        raise ValueError(f"{path}, line {extra[0]}: past the end of {classes} class(es) "
                         f"of {count} streams")
    return MllrTransform(tuple(matrices), tuple(biases))
