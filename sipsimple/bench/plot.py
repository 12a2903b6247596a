"""PNG plots of benchmark documents (matplotlib, an optional dependency: ``pip install sipsimple[bench]``).

Two kinds, chosen by what a workload's document holds:

- rising-rate runs (``message``, ``cps``, ``presence``, ``media``) carry
  ``details["rising"]``::

      {"x_label": "offered rate (MESSAGE/s)",
       "metrics": [{"key": "achieved_rate", "label": "achieved rate (MESSAGE/s)"}, ...],
       "sides": {"ours": "what ours is", "peer": "what the peer is"},
       "groups": [{"name": "MESSAGE over UDP",
                   "ours": [{"x": 500, "clean": true, "achieved_rate": 498.0, ...}, ...],
                   "peer": [...]}]}

  plotted as one row of panels per group, one panel per metric, ours and the
  peer on the same axes; a step that was not clean is drawn as a cross;
- the others (``parse``, ``msrp``): a bar per result figure with a ratio
  (ours/peer), a line at 1, green where ours is better and red where worse.

Figures are drawn with matplotlib's object API and Agg canvas, so nothing
global (pyplot's state, the interactive backend) is touched.
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["matplotlib_missing", "plot_document", "has_rising"]

OURS_COLOUR = "#1f77b4"
PEER_COLOUR = "#ff7f0e"


def matplotlib_missing() -> str | None:
    """None when matplotlib can be used, else why not."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"matplotlib is not available ({type(exc).__name__}: {exc}); install sipsimple[bench]"
    return None


def has_rising(document: dict) -> bool:
    rising = (document.get("details") or {}).get("rising")
    return bool(rising and any(g.get("ours") or g.get("peer") for g in rising.get("groups", [])))


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _title(name: str, document: dict) -> str:
    machine = document.get("machine") or {}
    extra = ", ".join(x for x in (machine.get("timestamp"), f"{machine.get('cpu_count')} CPU"
                                  if machine.get("cpu_count") else None) if x)
    return f"sipsimple bench {name}" + (f"  ({extra})" if extra else "")


def _plot_rising(name: str, document: dict, path: Path) -> None:
    rising = document["details"]["rising"]
    metrics = rising["metrics"]
    groups = [g for g in rising["groups"] if g.get("ours") or g.get("peer")]
    sides = rising.get("sides", {})
    columns = len(metrics)
    figure = _figure(4.2 * columns, 3.2 * len(groups) + 0.6)
    axes = figure.subplots(len(groups), columns, squeeze=False)
    for row, group in enumerate(groups):
        for column, metric in enumerate(metrics):
            ax = axes[row][column]
            key = metric["key"]
            # the peer dashed with hollow markers underneath, so ours stays visible where they coincide
            for side, colour, style in (("peer", PEER_COLOUR, {"marker": "s", "linestyle": "--",
                                                               "markerfacecolor": "none", "zorder": 2}),
                                        ("ours", OURS_COLOUR, {"marker": "o", "zorder": 2.5})):
                points = [p for p in group.get(side, []) if p.get(key) is not None]
                if not points:
                    continue
                ax.plot([p["x"] for p in points], [p[key] for p in points], color=colour, markersize=5,
                        label=f"{side}: {sides.get(side, side)}", **style)
                unclean = [p for p in points if not p.get("clean", True)]
                if unclean:
                    ax.scatter([p["x"] for p in unclean], [p[key] for p in unclean], marker="x", s=60,
                               color="red", zorder=3, label=f"{side}: not clean")
            if key == "achieved_rate":
                xs = [p["x"] for side in ("ours", "peer") for p in group.get(side, [])]
                if xs:   # the rate asked for: where the achieved rate should lie
                    ax.plot([min(xs), max(xs)], [min(xs), max(xs)], color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{group['name']}: {metric['label']}" if len(groups) > 1 else metric["label"],
                         fontsize=9)
            ax.set_ylim(bottom=0)   # rates, CPU, loss and latency are never negative
            ax.set_xlabel(rising.get("x_label", "x"), fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
            if row == 0 and column == 0:
                ax.legend(fontsize=7)
    figure.suptitle(_title(name, document), fontsize=10)
    figure.savefig(path, format="png")


def _ratio_bars(document: dict) -> list[tuple[str, float, bool | None, str]]:
    bars = []
    for figure_name, figure in (document.get("results") or {}).items():
        value = figure.get("ratio")
        if not isinstance(value, (int, float)) or not value or not math.isfinite(value):
            continue
        better = figure.get("better")
        good = None if better not in ("higher", "lower") else (value >= 1) == (better == "higher")
        detail = f"ours {figure.get('ours')} / peer {figure.get('peer')} {figure.get('unit', '')}".strip()
        bars.append((figure_name, float(value), good, detail))
    return bars


def _plot_ratios(name: str, document: dict, path: Path) -> bool:
    bars = _ratio_bars(document)
    if not bars:
        return False
    figure = _figure(9.0, 1.2 + 0.55 * len(bars))
    ax = figure.subplots()
    colours = ["#999999" if good is None else ("#2ca02c" if good else "#d62728") for _, _, good, _ in bars]
    positions = list(range(len(bars)))[::-1]
    ax.barh(positions, [value for _, value, _, _ in bars], color=colours)
    ax.set_yticks(positions, [label for label, _, _, _ in bars], fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    values = [value for _, value, _, _ in bars]
    if max(values) / min(values) > 50:   # parse-like speedups next to ratios near 1
        ax.set_xscale("log")
    for position, (_, value, _, detail) in zip(positions, bars, strict=True):
        ax.annotate(f" {value:.3g}  ({detail})", (value, position), va="center", fontsize=7)
    ax.set_xlabel("ours / peer (green: ours better, red: worse, grey: no direction)", fontsize=8)
    ax.margins(x=0.6)
    ax.set_title(_title(name, document), fontsize=10)
    figure.savefig(path, format="png")
    return True


def plot_document(name: str, document: dict, path: str | Path) -> str | None:
    """Write the workload's plot to ``path``; its kind ("rising" or "ratios"), or None if nothing to plot.

    Raises RuntimeError when matplotlib is missing (see :func:`matplotlib_missing`).
    """
    missing = matplotlib_missing()
    if missing:
        raise RuntimeError(missing)
    path = Path(path)
    if has_rising(document):
        _plot_rising(name, document, path)
        return "rising"
    if _plot_ratios(name, document, path):
        return "ratios"
    return None
