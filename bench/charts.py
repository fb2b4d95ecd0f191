"""The bench's comparisons as pictures: W1 throughput, W1 latency distributions, CPU per flow by process.

Drawn with matplotlib (Agg, no display) into PNG files beside the results JSON; ``report.markdown``
embeds the ones that were drawn. Each function returns the file it wrote, or None when the run has
no figures for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never a window, and no display needed

import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.ticker import FuncFormatter, LogLocator

from bench.report import cpu_ms

SYSTEMS = (("devhost", "#1f77b4"), ("DBOS", "#ff7f0e"), ("durabletask", "#2ca02c"))
PROCESSES = (("devhost", "devhost", "#1f77b4"), ("azurite", "Azurite", "#9467bd"),
             ("bench_client", "bench client", "#bcbd22"))


def _phases(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """W1 phase results by system: {"devhost": {"serial": ..., ...}, "DBOS": ..., "durabletask": ...}."""
    peers = results.get("peers") or {}
    out = {"devhost": (results.get("devhost") or {}).get("w1") or {},
           "DBOS": peers.get("dbos") or {}, "durabletask": peers.get("durabletask") or {}}
    return {name: data for name, data in out.items() if data and "error" not in data}


def throughput_chart(results: dict[str, Any], target: Path) -> Path | None:
    """Grouped bars: W1 orchestrations/s per system, one at a time, 32 clients, 32 clients polling slowly."""
    phases = _phases(results)
    groups = [("serial", "one at a time"), ("concurrent", "32 clients, 2 ms polls"),
              ("concurrent_relaxed", "32 clients, 50 ms polls\n(peers: their 32-client run)")]
    if not phases:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(SYSTEMS)
    for s, (name, color) in enumerate(SYSTEMS):
        data = phases.get(name)
        if not data:
            continue
        values = []
        for phase, _ in groups:
            # The peers have no relaxed phase: their 32-client figure is what devhost is compared with.
            entry = data.get(phase) or (data.get("concurrent") if phase == "concurrent_relaxed" else None) or {}
            values.append(entry.get("orchestrations_per_s") or 0.0)
        xs = [g + (s - (len(SYSTEMS) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name, color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    ax.set_xticks(range(len(groups)), [label for _, label in groups])
    return _finish_bars(fig, ax, "flows completed per second (higher is better)", "W1 ReserveTicket throughput",
                        target)


PLAIN_NUMBER = FuncFormatter(lambda value, _: f"{value:g}")  # 15, not 15.0 or 1.5e1
DENSE_SUBS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)


def latency_chart(results: dict[str, Any], target: Path) -> Path | None:
    """Box plots of every flow's latencies per system: start -> status visible, event -> Completed."""
    phases = _phases(results)
    panels = [(phase, metric) for phase in ("serial", "concurrent")
              for metric in ("start_to_status", "event_to_completed")]
    titles = {"serial": "one at a time", "concurrent": "32 clients",
              "start_to_status": "start -> status visible", "event_to_completed": "event raised -> Completed"}
    if not any(((data.get(p) or {}).get("samples_ms") or {}).get(m) for data in phases.values() for p, m in panels):
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 4.2))
    for ax, (phase, metric) in zip(axes, panels, strict=True):
        names, samples, colors = [], [], []
        for name, color in SYSTEMS:
            values = (((phases.get(name) or {}).get(phase) or {}).get("samples_ms") or {}).get(metric)
            if values:
                names.append(name)
                samples.append(values)
                colors.append(color)
        if not samples:
            ax.set_visible(False)
            continue
        boxes = ax.boxplot(samples, whis=(5, 95), showfliers=False, patch_artist=True, widths=0.6)
        for patch, color in zip(boxes["boxes"], colors, strict=True):
            patch.set_facecolor(color)
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        if high < low * 10:  # within a decade the usual minor ticks (2-9 times a power of 10) leave gaps unlabelled
            ax.yaxis.set_minor_locator(LogLocator(base=10, subs=DENSE_SUBS))
        ax.yaxis.set_major_formatter(PLAIN_NUMBER)
        ax.yaxis.set_minor_formatter(PLAIN_NUMBER)
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_title(f"{titles[phase]}:\n{titles[metric]}", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("ms per flow (log scale)")
    fig.suptitle("W1 latency per flow (lower is better; box: p25-p75 with the median, whiskers: p5-p95)")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def cpu_chart(results: dict[str, Any], target: Path) -> Path | None:
    """Stacked bars: CPU ms per W1 flow, split by process, for each W1 phase."""
    cpu = results.get("cpu") or {}
    w1 = (results.get("devhost") or {}).get("w1") or {}
    phases = [("w1s", "serial", "one at a time"), ("w1c", "concurrent", "32 clients,\n2 ms polls"),
              ("w1r", "concurrent_relaxed", "32 clients,\n50 ms polls")]
    rows = []
    for tag, phase, label in phases:
        count = (w1.get(phase) or {}).get("instances")
        if tag in cpu and count:
            c = cpu[tag]
            rows.append((label, [cpu_ms(c, key, count) for key, _, _ in PROCESSES]))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bottoms = [0.0] * len(rows)
    for p, (_, name, color) in enumerate(PROCESSES):
        values = [values[p] for _, values in rows]
        bars = ax.bar([label for label, _ in rows], values, 0.55, bottom=bottoms, label=name, color=color)
        ax.bar_label(bars, fmt="%.1f", label_type="center", fontsize=8)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    return _finish_bars(fig, ax, "CPU ms per flow (lower is better)", "CPU per W1 flow, by process", target)


def _finish_bars(fig: Any, ax: Any, ylabel: str, title: str, target: Path) -> Path:
    """Labels, legend and a plain frame for a bar chart, then the PNG file."""
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def draw_all(results: dict[str, Any], folder: Path, prefix: str = "") -> dict[str, str]:
    """Draw every chart the results allow into ``folder``; returns {chart name: file path}."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}
    for name, draw in (("w1-throughput", throughput_chart), ("w1-latency", latency_chart),
                       ("w1-cpu-per-flow", cpu_chart)):
        path = draw(results, folder / f"{prefix}{name}.png")
        if path is not None:
            drawn[name] = str(path)
    return drawn
