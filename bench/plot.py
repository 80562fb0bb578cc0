"""Bar charts of benchmark rows, saved as a PNG (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after matplotlib.use: Agg, no display


def _label(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def save_bars(
    path: Path,
    title: str,
    labels: Sequence[str],
    panels: Mapping[str, Mapping[str, Sequence[float | None]]],
    note: str = "",
) -> Path:
    """One panel per metric (e.g. "requests/s"), each with one bar group per label and one bar per
    series (e.g. p50 and p99); a missing value (None) is drawn as an empty slot."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, (metric, series) in zip(axes[:, 0], panels.items(), strict=True):
        width = 0.8 / max(1, len(series))
        for index, (name, values) in enumerate(series.items()):
            xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
            heights = [0.0 if v is None else v for v in values]
            bars = ax.bar(xs, heights, width, label=name)
            ax.bar_label(bars, labels=[_label(v) for v in values], fontsize=7)
        ax.set_ylabel(metric)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    if note:
        fig.text(0.01, 0.005, note, fontsize=7, alpha=0.7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
