"""Charts drawn on the server as inline SVG: the page needs no script and loads nothing from
another host. Colours come from presentation attributes (the pages' Content-Security-Policy
allows no inline style), and every label is escaped here, since the markup is marked safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

WIDTH = 720
HEIGHT = 180
LEFT = 64  # room for the y axis labels
BOTTOM = 24  # room for the x axis labels
TOP = 10
PALETTE = ("#2f6fb0", "#c0392b", "#27864a", "#8e44ad", "#b7791f")


@dataclass(frozen=True)
class Series:
    """One line of a line chart: (time in seconds since the epoch, value) points."""

    label: str
    points: Sequence[tuple[int, int]]


def bar_chart(values: Sequence[int], start: int, step_s: int, title: str,
              chart_id: str) -> Markup:
    """One bar per step from ``start`` (a count per minute, say), with the largest value on
    the y axis and a few times (UTC) on the x axis."""
    top = max(values, default=0)
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    parts = _frame(title, chart_id, top, str(top))
    slot = plot_w / max(1, len(values))
    for i, value in enumerate(values):
        if value <= 0:
            continue
        height = plot_h * value / top
        parts.append(f'<rect x="{LEFT + i * slot:.1f}" y="{TOP + plot_h - height:.1f}" '
                     f'width="{max(slot - 0.5, 0.5):.1f}" height="{height:.1f}" '
                     f'fill="{PALETTE[0]}"><title>{_time(start + i * step_s)}: {value}'
                     '</title></rect>')
    end = start + len(values) * step_s
    parts += _time_axis(start, end)
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(series: Sequence[Series], title: str, chart_id: str,
               unit: str = "bytes") -> Markup:
    """One line per series over their common time span, with a legend; one point alone is
    drawn as a dot."""
    points = [p for s in series for p in s.points]
    if not points:
        return Markup(f'<p class="muted" id="{escape(chart_id)}">No samples yet.</p>')
    first, last = min(t for t, _ in points), max(t for t, _ in points)
    top = max(v for _, v in points)
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    span = max(1, last - first)
    parts = _frame(title, chart_id, top, _amount(top, unit))

    def xy(t: int, v: int) -> tuple[float, float]:
        x = LEFT + plot_w * (t - first) / span if last > first else LEFT + plot_w / 2
        y = TOP + plot_h - (plot_h * v / top if top else 0)
        return x, y

    for n, line in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        coords = [xy(t, v) for t, v in line.points]
        if len(coords) == 1:
            parts.append(f'<circle cx="{coords[0][0]:.1f}" cy="{coords[0][1]:.1f}" r="3" '
                         f'fill="{colour}"/>')
        elif coords:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
        latest = line.points[-1][1] if line.points else 0
        parts.append(f'<text x="{LEFT + 8}" y="{TOP + 14 + 14 * n}" fill="{colour}" '
                     f'font-size="12">{escape(line.label)}: {escape(_amount(latest, unit))}'
                     '</text>')
    parts += _time_axis(first, last)
    parts.append("</svg>")
    return Markup("".join(parts))


def _frame(title: str, chart_id: str, top: int, top_label: str) -> list[str]:
    bottom = HEIGHT - BOTTOM
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#888"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH}" y2="{bottom}" stroke="#888"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" font-size="11" '
        f'fill="#444">{escape(top_label)}</text>',
        f'<text x="{LEFT - 6}" y="{bottom}" text-anchor="end" font-size="11" '
        'fill="#444">0</text>',
    ]


def _time_axis(first: int, last: int, ticks: int = 4) -> list[str]:
    plot_w = WIDTH - LEFT
    span = max(1, last - first)
    wide = span > 86_400
    labels = []
    for i in range(ticks + 1):
        at = first + span * i // ticks
        x = LEFT + plot_w * i / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        labels.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" '
                      f'font-size="11" fill="#444">{_time(at, wide)}</text>')
    return labels


def _time(at: int, with_day: bool = False) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%m-%d %H:%M" if with_day else "%H:%M")


def _amount(value: int, unit: str) -> str:
    if unit != "bytes":
        return f"{value:,}"
    size = float(value)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or suffix == "TiB":
            return f"{size:.0f} {suffix}" if suffix == "B" else f"{size:.1f} {suffix}"
        size /= 1024
    return f"{value} B"
