"""Server-drawn bar charts as inline SVG: no JavaScript, no chart library, no inline styles (the CSP allows
none), only SVG presentation attributes.

Each chart is a picture of the table that follows it on the page: `role="img"` named by its visible caption
(aria-labelledby), so a screen reader announces the caption and moves on to the table. Bars are horizontal,
each under its own label, with its value written after it; a chart with several series tells them apart by
pattern (solid, stripes, dots) as well as colour, and names the series in each value. Every colour has at least
3:1 contrast with the white background (WCAG 1.4.11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: The drawing's own width; it is scaled to its column (two-thirds of the page on a desktop).
WIDTH = 520
TEXT = "#0b0c0c"
FONT = "arial, sans-serif"
#: (colour, pattern): GOV.UK blue 5.2:1, dark blue 13:1, green 5.9:1 on white.
SERIES_STYLES = (("#1d70b8", "solid"), ("#003078", "stripes"), ("#00703c", "dots"))
LABEL_HEIGHT = 22
BAR_HEIGHT = 20
BAR_GAP = 6
GROUP_GAP = 14
MAX_LABEL = 56


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    text = f"{value:g}" if float(value).is_integer() else f"{value:.1f}"
    if unit.endswith("s") and value == 1:
        unit = unit[:-1]  # 1 hour
    return f"{text}{unit}"


def _fill(chart_id: str, index: int) -> str:
    colour, pattern = SERIES_STYLES[index % len(SERIES_STYLES)]
    return colour if pattern == "solid" else f"url(#{chart_id}-p{index})"


def _patterns(chart_id: str, count: int) -> str:
    out = []
    for index in range(min(count, len(SERIES_STYLES))):
        colour, pattern = SERIES_STYLES[index]
        pid = f"{chart_id}-p{index}"
        if pattern == "stripes":
            out.append(f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse" '
                       f'patternTransform="rotate(45)"><rect width="8" height="8" fill="#ffffff"/>'
                       f'<rect width="4" height="8" fill="{colour}"/></pattern>')
        elif pattern == "dots":
            out.append(f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse">'
                       f'<rect width="6" height="6" fill="#ffffff"/><circle cx="3" cy="3" r="2" fill="{colour}"/>'
                       f'</pattern>')
    return f"<defs>{''.join(out)}</defs>" if out else ""


def _text(x: float, y: float, content: str, *, weight: str = "normal") -> str:
    return (f'<text x="{x:g}" y="{y:g}" fill="{TEXT}" font-family="{FONT}" font-size="16" '
            f'font-weight="{weight}">{escape(content)}</text>')


def bar_chart(chart_id: str, caption_id: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "",
              maximum: float | None = None) -> Markup:
    """An SVG bar chart, named by the element with id ``caption_id`` (the figure's visible caption)."""
    several = len(series) > 1
    values = [v for s in series for v in s.values if v is not None]
    top = maximum if maximum is not None else max(values, default=0)
    top = top if top > 0 else 1
    value_room = 230 if several else 100
    bar_area = WIDTH - value_room
    parts: list[str] = []
    y = 0
    if several:  # the legend: each series' swatch (colour and pattern) and name
        x = 0
        for index, s in enumerate(series):
            parts.append(f'<rect x="{x}" y="{y + 2}" width="18" height="18" fill="{_fill(chart_id, index)}" '
                         f'stroke="{SERIES_STYLES[index % len(SERIES_STYLES)][0]}" stroke-width="1"/>')
            parts.append(_text(x + 26, y + 17, s.name))
            x += 26 + 9 * len(s.name) + 24
        y += 34
    for row, label in enumerate(labels):
        short = label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"
        parts.append(_text(0, y + 16, short, weight="bold"))
        y += LABEL_HEIGHT
        for index, s in enumerate(series):
            value = s.values[row] if row < len(s.values) else None
            width = 0.0 if value is None else max(0.0, min(1.0, value / top)) * bar_area
            colour = SERIES_STYLES[index % len(SERIES_STYLES)][0]
            if width > 0:
                parts.append(f'<rect x="0" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                             f'fill="{_fill(chart_id, index)}" stroke="{colour}" stroke-width="1"/>')
            words = _number(value, unit)
            parts.append(_text(width + 8, y + 15, f"{s.name}: {words}" if several else words))
            y += BAR_HEIGHT + BAR_GAP
        y += GROUP_GAP
    height = max(y, 1)
    # Every label and name in it went through escape(); the rest is numbers and fixed markup.
    return Markup(  # noqa: S704
        f'<svg id="{escape(chart_id)}" role="img" aria-labelledby="{escape(caption_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" focusable="false">'
        f'{_patterns(chart_id, len(series))}{"".join(parts)}</svg>')
