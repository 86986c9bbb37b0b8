"""The geometry of a small bar chart, drawn as SVG by templates/partials/bar_chart.html: no script,
no chart library, nothing the Content-Security-Policy would stop (no <style>, no style attributes)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 22  # room for the value ticks and the date labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the tooltip, and what a screen reader gets for the bar


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float  # where the plot ends
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Label]
    empty: bool


def short_number(value: int) -> str:
    """12000 → 1.2万, 3 400 000 → 340万: how the ticks are labelled."""
    if value >= 100_000_000:
        return f"{value / 100_000_000:.3g}亿"
    if value >= 10_000:
        return f"{value / 10_000:.3g}万"
    return f"{value:,}"


def nice_ceiling(value: int) -> int:
    """The top of the scale: 1, 2, 2.5 or 5 times a power of ten, at or above the largest bar."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return int(step * power) or 1
    return 10 * power  # not reached


def bar_chart(points: Sequence[tuple[str, int, str]], *, width: int = 640, height: int = 170,
              label_every: int = 7) -> Chart:
    """`points` are (axis label, value, tooltip), left to right; every `label_every`-th label is shown
    (and the last, always)."""
    plot_width, plot_height = width - LEFT - RIGHT, height - TOP - BOTTOM
    top = nice_ceiling(max((value for _, value, _ in points), default=0))
    slot = plot_width / max(1, len(points))
    bars, labels = [], []
    for index, (label, value, title) in enumerate(points):
        bar_height = plot_height * value / top
        x = LEFT + index * slot
        bars.append(Bar(x=round(x + slot * 0.15, 2), y=round(TOP + plot_height - bar_height, 2),
                        width=round(slot * 0.7, 2), height=round(bar_height, 2), title=title))
        to_last = len(points) - 1 - index
        if to_last == 0 or (index % label_every == 0 and to_last >= label_every / 2):  # labels never collide
            labels.append(Label(x=round(x + slot / 2, 2), text=label))
    ticks = [Tick(y=round(TOP + plot_height * (1 - share), 2), label=short_number(round(top * share)))
             for share in (0, 0.5, 1)]
    return Chart(width=width, height=height, left=LEFT, right=width - RIGHT, baseline=TOP + plot_height, bars=bars,
                 ticks=ticks, labels=labels, empty=not any(value for _, value, _ in points))
