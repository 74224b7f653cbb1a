"""Refusals per reason over time, drawn with matplotlib (``pip install 'authguard[plot]'``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.dates import date2num

from .events import AuthEvent

__all__ = ["plot_refusals"]

# Bucket widths the plot picks from (seconds): the smallest that gives at most ``buckets``.
_WIDTHS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
           3600.0, 7200.0, 21600.0, 86400.0)


def plot_refusals(events: Sequence[AuthEvent], path: str, *, buckets: int = 45) -> None:
    """Draw the refusals per reason over time into the PNG file ``path``."""
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    try:
        if events:
            start = min(e.time for e in events)
            span = max(e.time for e in events) - start
            width = next((w for w in _WIDTHS if w >= span / buckets), _WIDTHS[-1])
            series: dict[str, Counter[int]] = defaultdict(Counter)
            for e in events:
                series[e.reason or "-"][int((e.time - start) // width)] += 1
            slots = range(int(span // width) + 1)
            times = date2num(  # type: ignore[no-untyped-call]
                [datetime.fromtimestamp(start + i * width, UTC) for i in slots])
            for reason, counts in sorted(series.items(), key=lambda kv: -kv[1].total()):
                ax.plot(times, [counts.get(i, 0) for i in slots], label=reason,
                        drawstyle="steps-post")
            ax.set_ylabel(f"refusals per {width:g} s")
            ax.legend(fontsize="small", loc="upper left")
        else:
            ax.text(0.5, 0.5, "no refusals", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title("authguard: refusals per reason")
        ax.set_xlabel("time (UTC)")
        ax.grid(alpha=0.3)
        ax.xaxis_date()
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
