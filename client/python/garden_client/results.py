"""What Garden's calls return: numpy arrays, and pandas DataFrames where pandas is installed.

Without pandas, a table is a ``Table`` (a dict of numpy columns) or ``Records`` (a
list of dicts); both carry ``.attrs`` as a DataFrame does, so the same code reads
``result.attrs["peak"]`` either way.
"""

import dataclasses
import math
from typing import List, Optional

import numpy as np

try:
    import pandas as _pandas
except ImportError:  # pandas is optional
    _pandas = None


def have_pandas():
    return _pandas is not None


class Table(dict):
    """Columns by name (numpy arrays, all the same length) plus ``attrs``: what a
    DataFrame would be, without pandas."""

    def __init__(self, columns=(), attrs=None):
        super().__init__(columns)
        self.attrs = dict(attrs or {})

    def __len__(self):
        return len(next(iter(self.values()))) if dict.__len__(self) else 0

    @property
    def columns(self):
        return list(self.keys())

    def to_records(self):
        """One dict per row, numpy scalars turned into Python numbers."""
        n = len(self)
        return [{k: _py(v[i]) for k, v in self.items()} for i in range(n)]

    def __repr__(self):
        return f"Table({dict(self)!r}, attrs={self.attrs!r})"


class Records(list):
    """A list of dicts plus ``attrs``: a DataFrame's rows, without pandas."""

    def __init__(self, rows=(), attrs=None):
        super().__init__(rows)
        self.attrs = dict(attrs or {})


def _py(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def make_table(columns, attrs, frames):
    """A DataFrame (frames and pandas) or a Table of numpy columns."""
    if frames:
        df = _pandas.DataFrame({k: _column_for_pandas(v) for k, v in columns.items()})
        df.attrs.update(attrs)
        return df
    return Table(columns, attrs)


def make_records(rows, columns, attrs, frames):
    """A DataFrame with `columns` (frames and pandas) or Records (a list of dicts)."""
    if frames:
        df = _pandas.DataFrame(rows, columns=columns)
        df.attrs.update(attrs)
        return df
    return Records(rows, attrs)


def _column_for_pandas(values):
    # Ragged columns (lists per row) stay lists; numbers become numpy arrays.
    return values if isinstance(values, np.ndarray) else list(values)


def number(x):
    """A double from the server; NaN stays NaN (the CLI's JSON prints null)."""
    return float(x)


@dataclasses.dataclass
class Histograms:
    """One tensor's histograms over training, a row per step in ascending order.

    ``counts[i]`` is step ``steps[i]``'s histogram over ``edges`` (numpy's rule:
    ``numpy.linspace(lo, hi, bins + 1)``; every bin half-open but the last).
    ``moments`` holds n, mean, std, min, max, skewness, kurtosis per step (a
    DataFrame, or a Table without pandas); NaN where undefined.
    """

    model: str
    tensor: str
    steps: np.ndarray          # int64, (steps,)
    edges: np.ndarray          # float64, (bins + 1,): one common range for every step
    counts: np.ndarray         # uint64, (steps, bins)
    underflow: np.ndarray      # uint64, (steps,)
    overflow: np.ndarray
    nan: np.ndarray
    posinf: np.ndarray
    neginf: np.ndarray
    lo: np.ndarray             # float64, (steps,)
    hi: np.ndarray
    moments: object
    dtype: str
    shape: List[int]

    @property
    def bins(self):
        return self.counts.shape[1] if self.counts.ndim == 2 else 0

    def __len__(self):
        return len(self.steps)

    def density(self):
        """Each step's histogram as a density: counts / (that step's count × bin
        width), float64 (steps, bins); what Figure 2 colours."""
        widths = np.diff(self.edges)
        totals = self.counts.sum(axis=1, keepdims=True).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = self.counts / (totals * widths)
        return np.where(totals > 0, d, 0.0)

    def records(self):
        """One dict per step with the keys of ``garden hist --format jsonl`` (NaN as None)."""
        m = {k: np.asarray(self.moments[k])
             for k in ("n", "mean", "std", "min", "max", "skewness", "kurtosis")}
        out = []
        for i, step in enumerate(self.steps):
            rec = {"step": int(step), "lo": _json(self.lo[i]), "hi": _json(self.hi[i]),
                   "counts": [int(c) for c in self.counts[i]],
                   "underflow": int(self.underflow[i]), "overflow": int(self.overflow[i])}
            for k in ("n", "mean", "std", "min", "max", "skewness", "kurtosis"):
                rec[k] = int(m[k][i]) if k == "n" else _json(m[k][i])
            rec.update({"nan": int(self.nan[i]), "posinf": int(self.posinf[i]),
                        "neginf": int(self.neginf[i]), "dtype": self.dtype,
                        "shape": list(self.shape)})
            out.append(rec)
        return out


def _json(x):
    x = float(x)
    return None if not math.isfinite(x) else x


@dataclasses.dataclass
class Tokens:
    """A text's tokens: ids (int32) and pieces (the token strings, e.g. "Ġthe")."""

    ids: np.ndarray
    pieces: List[str]

    def __len__(self):
        return len(self.ids)

    def __array__(self, dtype=None):
        return self.ids if dtype is None else self.ids.astype(dtype)


@dataclasses.dataclass
class Token:
    """One generated token: id, the text it adds, log P under the model (temperature 1)
    and its position among the new tokens."""

    id: int
    text: str
    logprob: float
    index: int


@dataclasses.dataclass
class Logits:
    """Mean over positions of the next-token logits of a text (Figure 1 D).

    ``top`` has the highest mean logits, descending (id, piece, logit: a DataFrame or
    Records); ``mean_logits`` the whole float32 vector (vocab_size,), or None when
    asked with ``full=False``. ``numpy.asarray(logits)`` is ``mean_logits``.
    """

    step: int
    tokens: int
    top: object
    mean_logits: Optional[np.ndarray]

    def __array__(self, dtype=None):
        if self.mean_logits is None:
            raise ValueError("these logits were fetched with full=False")
        return self.mean_logits if dtype is None else self.mean_logits.astype(dtype)


@dataclasses.dataclass
class Attention:
    """One layer's attention probabilities for a text (Figure 1 C).

    ``weights[h, i, j]``: how much query position i attends to key position j (0 for
    j > i), float32 (heads, tokens, tokens); heads is 1 when averaged.
    ``numpy.asarray(attention)`` is ``weights``.
    """

    step: int
    layer: int
    averaged: bool
    pieces: List[str]
    weights: np.ndarray

    @property
    def heads(self):
        return self.weights.shape[0]

    @property
    def tokens(self):
        return self.weights.shape[1]

    def __array__(self, dtype=None):
        return self.weights if dtype is None else self.weights.astype(dtype)


@dataclasses.dataclass
class Unmasking:
    """The paper's causal unmasking (Figure 5): greedy completions from growing prefixes.

    ``frames``: one row per (step, k) in the server's order, with the keys of
    ``garden unmask --format json``'s frames (a DataFrame or Records).
    ``recovered[i, j]``: the fraction recovered at ``steps[i]`` from ``ks[j]``
    tokens (float64, NaN where a pair was not computed).
    """

    text: str
    n: int
    original_ids: np.ndarray
    frames: object
    steps: np.ndarray
    ks: np.ndarray
    recovered: np.ndarray

    def __array__(self, dtype=None):
        return self.recovered if dtype is None else self.recovered.astype(dtype)
