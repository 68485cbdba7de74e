"""The paper's figures in matplotlib, drawn from what ``Garden``'s calls return.

Every function returns a ``matplotlib.figure.Figure`` (made without pyplot, so nothing
accumulates in pyplot's global state; Jupyter shows it, ``fig.savefig(path)`` writes
it). Given ``ax=``, it draws into that Axes instead and returns its figure.

    density(h)          Figure 2: a tensor's density over training (from Garden.hist)
    msd(m)              Figure 3: the MSD curve, its peak dashed (from Garden.msd)
    ppl(p)              Figure 4: perplexity on linear and log axes (from Garden.ppl)
    attention(a)        Figure 1 C: attention matrices, a panel per head (Garden.attention)
    matrix(values)      Figure 1 B: a tensor's rectangle as an image (Garden.matrix)
    logits(ls)          Figure 1 D: mean logit per token id, a curve per step (Garden.logits)
    unmask(u)           Figure 5 in numbers: fraction recovered per step and prefix length
"""

import numpy as np

try:
    from matplotlib.figure import Figure
except ImportError as _error:
    raise ImportError("garden_client.plot needs matplotlib (Debian: python3-matplotlib)") \
        from _error


def _axes(ax, **figure_kw):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(**figure_kw)
    return fig, fig.add_subplot()


def _col(table, name):
    return np.asarray(table[name])


def _log_step_axis(ax, steps, axis="x"):
    """Ticks of a log(1 + step) axis labelled with the steps."""
    steps = np.asarray(steps, dtype=np.float64)
    top = max(float(steps.max()) if steps.size else 1.0, 1.0)
    ticks = [0.0] + [10.0 ** k for k in range(0, int(np.floor(np.log10(top))) + 1)]
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_labels = ax.set_xticklabels if axis == "x" else ax.set_yticklabels
    set_ticks(np.log1p(ticks))
    set_labels([f"{int(t):,}" if t < 1e4 else f"1e{int(np.log10(t))}" for t in ticks])


def _cell_edges(x):
    """Boundaries of cells centred on the ascending positions x."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])


def density(h, *, branches=None, decades=4, ax=None, title=None, cmap="viridis"):
    """Figure 2: x = step on a log(1 + step) axis, y = weight value, colour = log10 of
    each step's density (its histogram normalised by its count and bin width), the top
    ``decades`` decades shown. ``branches``: Garden.bifurcation's result for the same
    steps, its modes drawn as points and its onset dashed."""
    fig, ax = _axes(ax, figsize=(8, 4.5))
    d = h.density()
    with np.errstate(divide="ignore"):
        logd = np.log10(d)
    finite = logd[np.isfinite(logd)]
    top = float(finite.max()) if finite.size else 0.0
    logd = np.ma.masked_less(np.where(np.isfinite(logd), logd, -np.inf), top - decades)
    x = np.log1p(np.asarray(h.steps, dtype=np.float64))
    edges = h.edges if np.ndim(h.edges) == 1 else h.edges[0]
    mesh = ax.pcolormesh(_cell_edges(x), edges, logd.T, cmap=cmap, vmin=top - decades,
                         vmax=top, shading="flat")
    fig.colorbar(mesh, ax=ax, label="log10 density")
    if branches is not None:
        bx, by = [], []
        for step, modes in zip(_col(branches, "step"), branches["modes"]):
            for m in np.atleast_1d(modes):
                bx.append(np.log1p(float(step)))
                by.append(float(m))
        ax.scatter(bx, by, s=6, c="white", edgecolors="black", linewidths=0.3,
                   label="modes")
        onset = branches.attrs.get("onset")
        if onset is not None:
            ax.axvline(np.log1p(onset), color="red", linestyle="--", label=f"onset {onset}")
    _log_step_axis(ax, h.steps)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{h.tensor} value")
    ax.set_title(title or f"{h.model} {h.tensor}")
    return fig


def msd(m, *, ax=None, title=None, label=None):
    """Figure 3: MSD against the step (log(1 + step) axis; log(1 + τ) in lag mode), the
    peak dashed where the curve has an interior one."""
    fig, ax = _axes(ax, figsize=(7, 4))
    attrs = getattr(m, "attrs", {})
    x = _col(m, "step").astype(np.float64)
    y = _col(m, "msd")
    ax.plot(np.log1p(x), y, marker="o", markersize=3, label=label or attrs.get("model"))
    peak = attrs.get("peak")
    if peak is not None:
        ax.axvline(np.log1p(peak["step"]), color="grey", linestyle="--",
                   label=f"peak {peak['step']}")
    _log_step_axis(ax, x)
    lag = attrs.get("mode") == "lag"
    ax.set_xlabel("lag τ" if lag else "step")
    ax.set_ylabel("MSD")
    ax.set_title(title or f"{attrs.get('model', '')} {attrs.get('tensor', '')}".strip())
    ax.legend()
    return fig


def ppl(p, *, title=None, label=None):
    """Figure 4: perplexity against the step, linear and log axes side by side."""
    fig = Figure(figsize=(10, 4))
    attrs = getattr(p, "attrs", {})
    steps = _col(p, "step").astype(np.float64)
    perplexity = _col(p, "perplexity")
    for i, scale in enumerate(("linear", "log")):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(steps, perplexity, marker="o", markersize=3,
                label=label or attrs.get("model"))
        ax.set_yscale(scale)
        ax.set_xlabel("step")
        ax.set_ylabel("perplexity")
        ax.set_title(f"{scale} scale")
        ax.legend()
    fig.suptitle(title or f"{attrs.get('model', '')} {attrs.get('dataset', '')}".strip())
    return fig


def attention(a, *, title=None, cmap="magma"):
    """Figure 1 C: the attention matrix, a panel per head (or their mean), the tokens on
    both axes (queries down, keys across)."""
    w = np.asarray(a)
    heads = w.shape[0]
    fig = Figure(figsize=(3.2 * heads + 1, 3.6))
    for h in range(heads):
        ax = fig.add_subplot(1, heads, h + 1)
        image = ax.imshow(w[h], vmin=0.0, vmax=1.0, cmap=cmap)
        n = w.shape[1]
        if n <= 40:
            ax.set_xticks(range(n))
            ax.set_xticklabels(a.pieces, rotation=90, fontsize=6)
            ax.set_yticks(range(n))
            ax.set_yticklabels(a.pieces, fontsize=6)
        ax.set_title("mean of the heads" if a.averaged else f"head {h}")
    fig.colorbar(image, ax=fig.axes, shrink=0.8)
    fig.suptitle(title or f"step {a.step}, layer {a.layer}")
    return fig


def matrix(values, *, row_begin=0, col_begin=0, ax=None, title=None, cmap="RdBu_r"):
    """Figure 1 B: a rectangle of a tensor as an image, a symmetric colour scale."""
    fig, ax = _axes(ax, figsize=(6, 5))
    v = np.asarray(values, dtype=np.float64)
    finite = np.abs(v[np.isfinite(v)])
    scale = float(finite.max()) if finite.size else 1.0
    image = ax.imshow(v, cmap=cmap, vmin=-scale, vmax=scale, aspect="auto",
                      extent=(col_begin - 0.5, col_begin + v.shape[1] - 0.5,
                              row_begin + v.shape[0] - 0.5, row_begin - 0.5))
    fig.colorbar(image, ax=ax)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    if title:
        ax.set_title(title)
    return fig


def logits(ls, *, ax=None, title=None):
    """Figure 1 D: the mean logit of every token id, a curve per step (a Logits or a list
    of them, fetched with full=True)."""
    fig, ax = _axes(ax, figsize=(8, 4))
    for one in ([ls] if hasattr(ls, "mean_logits") else ls):
        ax.plot(np.asarray(one), linewidth=0.6, label=f"step {one.step}")
    ax.set_xlabel("token id")
    ax.set_ylabel("mean logit")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def unmask(u, *, ax=None, title=None):
    """The fraction of the sentence recovered, per step (rows) and prefix length k."""
    fig, ax = _axes(ax, figsize=(6, 4))
    image = ax.imshow(u.recovered, vmin=0.0, vmax=1.0, aspect="auto", cmap="Greens")
    ax.set_xticks(range(len(u.ks)))
    ax.set_xticklabels([str(k) for k in u.ks])
    ax.set_yticks(range(len(u.steps)))
    ax.set_yticklabels([str(s) for s in u.steps])
    ax.set_xlabel("prefix length k")
    ax.set_ylabel("step")
    fig.colorbar(image, ax=ax, label="recovered")
    if title:
        ax.set_title(title)
    return fig
