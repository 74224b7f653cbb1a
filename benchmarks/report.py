"""The printed table, the targets, the machine description and the plot."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .inproc import Case, Cell


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages * size / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("authguard", "starlette", "fastapi", "pyjwt", "cryptography",
                     "itsdangerous", "argon2-cffi", "uvicorn"))
    return (f"{cpu}, {os.cpu_count()} CPUs{mem}; {platform.system()} {platform.release()}; "
            f"Python {sys.version.split()[0]}; {versions}")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _us(cell: Cell | None) -> str:
    if cell is None or not cell.samples:
        return "—"
    value = cell.median
    return f"{value:,.1f}" if value < 10_000 else f"{value / 1000:,.1f} ms"


def _ratio(a: Cell | None, b: Cell | None) -> float | None:
    if a is None or b is None or not a.samples or not b.samples:
        return None
    return a.median / b.median


def _fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}×" if value < 100 else f"{value:,.0f}×"


def verdict(case: Case, bare: Cell) -> tuple[float | None, bool | None]:
    """(the ratio the target is about, whether it is met); ``None`` when not applicable."""
    target = case.target
    if target is None or case.authguard is None:
        return None, None
    ref = (case.bare or bare) if target.against == "bare" else case.starlette
    ratio = _ratio(case.authguard, ref)
    return ratio, (ratio is not None and ratio <= target.limit)


def table(cases: list[Case]) -> str:
    """A Markdown table: µs per request, ratios to bare Starlette and to the peers."""
    bare = next(c for c in cases if c.key == "bare").starlette
    assert bare is not None
    head = ("| case | authguard µs | spread | bare µs, same path | × bare | Starlette µs "
            "| × bare | FastAPI µs | × bare | ag ÷ Starlette | ag ÷ FastAPI "
            "| statuses ag/St/FA | target | met |")
    lines = [head, "|" + "|".join(["---"] + ["---:"] * 10 + ["---"] * 3) + "|"]
    reference = bare
    for case in cases:
        ag, st, fa = case.authguard, case.starlette, case.fastapi
        bare = case.bare or reference
        ratio, met = verdict(case, bare)
        statuses = "/".join(str(c.status) if c is not None and c.status else "—"
                            for c in (ag, st, fa))
        target = case.target.describe() if case.target else ""
        mark = "" if met is None else ("yes" if met else "**no**")
        if case.target and case.authguard is None:
            mark = "skipped"
        spread = f"±{ag.spread * 100:.0f}%" if ag is not None and ag.samples else ""
        if case.key == "bare":
            spread = f"±{st.spread * 100:.0f}% (St)" if st is not None and st.samples else ""
        lines.append(
            f"| {case.label} | {_us(ag)} | {spread} | {_us(bare)} "
            f"| {_fmt_ratio(_ratio(ag, bare))} "
            f"| {_us(st)} | {_fmt_ratio(_ratio(st, bare))} | {_us(fa)} "
            f"| {_fmt_ratio(_ratio(fa, bare))} | {_fmt_ratio(_ratio(ag, st))} "
            f"| {_fmt_ratio(_ratio(ag, fa))} | {statuses} | {target} "
            f"| {mark}{'' if ratio is None or met is None else f' ({ratio:.2f}×)'} |")
    return "\n".join(lines)


def targets_summary(cases: list[Case]) -> list[tuple[str, str, bool | None]]:
    bare = next(c for c in cases if c.key == "bare").starlette
    assert bare is not None
    out = []
    for case in cases:
        if case.target is None:
            continue
        ratio, met = verdict(case, bare)
        text = f"{case.label}: {case.target.describe()}"
        out.append((text, "skipped" if ratio is None else f"{ratio:.2f}×", met))
    return out


def as_json(cases: list[Case]) -> list[dict[str, Any]]:
    def cell(c: Cell | None) -> dict[str, Any] | None:
        if c is None:
            return None
        return {"status": c.status, "median_us": c.median if c.samples else None,
                "min_us": min(c.samples) if c.samples else None,
                "spread": c.spread if c.samples else None, "samples_us": c.samples,
                "requests_per_batch": c.n}
    return [{"key": c.key, "label": c.label, "authguard": cell(c.authguard),
             "starlette": cell(c.starlette), "fastapi": cell(c.fastapi),
             "bare_same_path": cell(c.bare),
             "target": None if c.target is None else c.target.describe()} for c in cases]


def plot(cases: list[Case], throughput: list[dict[str, Any]] | None,
         hashing: list[dict[str, Any]] | None, path: Path) -> bool:
    """Grouped horizontal bars (log scale) per case; beside them the uvicorn runs."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [c for c in cases if c.key != "bare"]
    bare = next(c for c in cases if c.key == "bare").starlette
    assert bare is not None
    side = bool(throughput)
    fig = plt.figure(figsize=(14 if side else 9, 0.3 * len(shown) + 1.8))
    grid = fig.add_gridspec(2, 2 if side else 1, width_ratios=[2.4, 1] if side else None)
    ax = fig.add_subplot(grid[:, 0])
    height = 0.27
    colours = {"authguard": "#2b7bb9", "Starlette": "#f29e38", "FastAPI": "#7aa35a"}
    for i, (name, attr) in enumerate((("authguard", "authguard"), ("Starlette", "starlette"),
                                      ("FastAPI", "fastapi"))):
        ys, xs = [], []
        for j, case in enumerate(shown):
            c = getattr(case, attr)
            if c is not None and c.samples:
                ys.append(j + (i - 1) * height)
                xs.append(c.median)
        ax.barh(ys, xs, height=height, label=name, color=colours[name])
    ax.axvline(bare.median, color="black", linewidth=0.8, linestyle="--",
               label=f"bare Starlette ({bare.median:.1f} µs)")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([c.label for c in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per request (median, in-process ASGI call; log scale; lower is better)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_title("Per request, in process", fontsize=10)
    if throughput:
        tx = fig.add_subplot(grid[0, 1])
        names = [row["short"] for row in throughput]
        tx.barh(range(len(throughput)), [row["rps"] for row in throughput],
                color=["#999999", "#2b7bb9", "#f29e38"][:len(throughput)])
        tx.set_yticks(range(len(throughput)))
        tx.set_yticklabels(names, fontsize=8)
        tx.invert_yaxis()
        tx.set_xlabel("requests/s (higher is better)", fontsize=8)
        tx.set_title("uvicorn, one worker: repeated JWT", fontsize=10)
        tx.grid(axis="x", alpha=0.3)
    if hashing:
        hx = fig.add_subplot(grid[1, 1])
        labels, alone, busy = [], [], []
        for row in hashing:
            labels.append(row["short"])
            alone.append(row["idle_rps"])
            busy.append(row["busy_rps"])
        ys = range(len(hashing))
        hx.barh([y - 0.2 for y in ys], alone, height=0.4, color="#bbbbbb", label="alone")
        hx.barh([y + 0.2 for y in ys], busy, height=0.4, color="#2b7bb9",
                label="during argon2 logins")
        hx.set_yticks(list(ys))
        hx.set_yticklabels(labels, fontsize=8)
        hx.invert_yaxis()
        hx.set_xlabel("GET /public requests/s", fontsize=8)
        hx.set_title("Other requests while argon2 hashes", fontsize=10)
        hx.legend(fontsize=7, loc="lower right")
        hx.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
