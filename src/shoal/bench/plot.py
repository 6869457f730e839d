"""The benchmark report as one self-contained HTML page: inline SVG charts against clients, and a table.

No plotting library: three line charts (delivered poses per second, p50/p99 latency, server CPU per
delivered pose) with one colour per protocol, drawn as SVG polylines, so the page opens anywhere and
can be committed next to the JSON it was drawn from. Latency and CPU have logarithmic axes: a saturated
relay's seconds of latency and microseconds per pose would otherwise flatten Shoal's milliseconds and
tenths of a microsecond onto the target lines they are compared with.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.bench.targets import CPU_US_PER_POSE, P99_SLACK_MS, p99_limit_ms, verdicts

COLOURS = {"binary": "#1f77b4", "json": "#ff7f0e", "broadcast": "#7f7f7f"}
WIDTH, HEIGHT = 560, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 36, 44


@dataclass
class Series:
    """One line: `label`, its colour, (clients, value) points, and whether it is dashed."""

    label: str
    colour: str
    points: list[tuple[float, float]]
    dashed: bool = False


@dataclass
class Chart:
    title: str
    y_label: str
    series: list[Series]
    references: list[tuple[str, float]] = field(default_factory=list)
    """Horizontal dotted lines (label, value): targets to compare against."""
    log_y: bool = False
    """A logarithmic y axis (values of 0 or less sit on its bottom edge)."""


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 2.5, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Round tick values on a logarithmic axis covering [low, high] (both above 0): 1, 2 and 5 times each
    power of ten when the range spans at most two decades, else the powers of ten alone."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    last = max(last, first + 1)
    multiples = (1, 2, 5) if last - first <= 2 else (1,)
    ticks = [round(m * 10.0**exponent, 12) for exponent in range(first, last) for m in multiples]
    ticks.append(round(10.0**last, 12))
    start = max(i for i, tick in enumerate(ticks) if tick <= low)
    end = min(i for i, tick in enumerate(ticks) if tick >= high)
    end = max(end, start + 1)  # two ticks at least, even when low == high
    return ticks[start : end + 1]


def _format(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def svg_chart(chart: Chart, x_values: Sequence[float]) -> str:
    """One chart as an <svg> element."""
    values = [y for series in chart.series for _, y in series.points] + [value for _, value in chart.references]
    x_ticks = nice_ticks(0.0, max(x_values, default=1.0))
    x_max = x_ticks[-1]
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float) -> float:
        return MARGIN_LEFT + plot_w * x / x_max

    if chart.log_y:
        positive = [value for value in values if value > 0]
        y_ticks = log_ticks(min(positive, default=1.0), max(positive, default=10.0) * 1.1)  # 1.1: off the frame
        bottom, top = math.log10(y_ticks[0]), math.log10(y_ticks[-1])

        def sy(y: float) -> float:
            return MARGIN_TOP + plot_h * (1 - (math.log10(max(y, y_ticks[0])) - bottom) / (top - bottom))

    else:
        y_ticks = nice_ticks(0.0, max(values, default=1.0) * 1.05)

        def sy(y: float) -> float:
            return MARGIN_TOP + plot_h * (1 - y / y_ticks[-1])

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f"<title>{html.escape(chart.title)}</title>",
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">{html.escape(chart.title)}</text>',
    ]
    for tick in y_ticks:
        y = sy(tick)
        parts.append(f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_format(tick)}</text>')
    for tick in x_ticks:
        x = sx(tick)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" text-anchor="middle">{_format(tick)}</text>')
    parts.append(
        f'<text x="{MARGIN_LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">clients</text>'
        f'<text transform="translate(14 {MARGIN_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{html.escape(chart.y_label)}</text>"
        f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    for index, (label, value) in enumerate(chart.references):
        y = sy(value)
        # labels alternate right and left, so that two close targets stay readable
        x, anchor = (WIDTH - MARGIN_RIGHT - 4, "end") if index % 2 == 0 else (MARGIN_LEFT + 120, "start")
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c00" '
            f'stroke-dasharray="2 3"/><text x="{x}" y="{y - 4:.1f}" text-anchor="{anchor}" '
            f'fill="#c00" stroke="#fff" stroke-width="3" paint-order="stroke">{html.escape(label)}</text>'
        )
    legend_y = MARGIN_TOP + 14
    legend_width = 48 + 7 * max((len(series.label) for series in chart.series), default=0)
    parts.append(  # the legend stays readable where lines pass under it
        f'<rect x="{MARGIN_LEFT + 4}" y="{MARGIN_TOP + 2}" width="{legend_width}" '
        f'height="{16 * len(chart.series) + 4}" fill="#fff" fill-opacity="0.85"/>'
    )
    for series in chart.series:
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(series.points))
        dash = ' stroke-dasharray="6 4"' if series.dashed else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{series.colour}" stroke-width="2"{dash}/>')
        for x, y in series.points:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{series.colour}"/>')
        parts.append(
            f'<line x1="{MARGIN_LEFT + 10}" x2="{MARGIN_LEFT + 34}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
            f'stroke="{series.colour}" stroke-width="2"{dash}/>'
            f'<text x="{MARGIN_LEFT + 40}" y="{legend_y}">{html.escape(series.label)}</text>'
        )
        legend_y += 16
    parts.append("</svg>")
    return "\n".join(parts)


def charts_of(points: list[dict[str, Any]], tick_rate: float | None = None) -> list[Chart]:
    """The three charts of a sweep's points (each point one protocol at one client count), with the issue's
    targets as reference lines (the latency one needs the `tick_rate`)."""
    protocols = list(dict.fromkeys(point["params"]["protocol"] for point in points))

    def series(protocol: str, value: Any, label: str = "", dashed: bool = False) -> Series:
        mine = [p for p in points if p["params"]["protocol"] == protocol and value(p) is not None]
        data = [(float(p["params"]["clients"]), float(value(p))) for p in mine]
        return Series(label or protocol, COLOURS.get(protocol, "#2ca02c"), data, dashed)

    return [
        Chart("Delivered poses per second", "poses/s", [series(p, lambda r: r["deliveries_per_s"]) for p in protocols]),
        Chart(
            "Latency, send to receive (p50 solid, p99 dashed)",
            "ms (log scale)",
            [series(p, lambda r: r["latency_ms"]["p50"], f"{p} p50") for p in protocols]
            + [series(p, lambda r: r["latency_ms"]["p99"], f"{p} p99", dashed=True) for p in protocols],
            references=[(f"p99 target: one tick + {P99_SLACK_MS:g} ms", p99_limit_ms(tick_rate))] if tick_rate else [],
            log_y=True,
        ),
        Chart(
            "Server CPU per delivered pose",
            "µs (log scale)",
            [series(p, lambda r: r["us_per_delivered_pose"]) for p in protocols],
            references=[(f"{name} target {limit} µs", limit) for name, limit in CPU_US_PER_POSE.items()],
            log_y=True,
        ),
    ]


TABLE_COLUMNS = (
    ("protocol", lambda r: r["params"]["protocol"]),
    ("clients", lambda r: r["params"]["clients"]),
    ("room", lambda r: r["params"]["room_size"]),
    ("delivered/s", lambda r: r["deliveries_per_s"]),
    ("loss %", lambda r: r["loss_pct"]),
    ("p50 ms", lambda r: r["latency_ms"]["p50"]),
    ("p99 ms", lambda r: r["latency_ms"]["p99"]),
    ("CPU µs/pose", lambda r: r["us_per_delivered_pose"]),
    ("MB/s out", lambda r: _megabytes_per_second(r)),
    ("server cores", lambda r: r["server"]["cores_used"]),
    ("loaders cores", lambda r: r["loaders_cores_used"]),
    ("load avg", lambda r: " ".join(f"{v:g}" for v in r["host"]["loadavg_start"])),
)


def _megabytes_per_second(point: dict[str, Any]) -> str:
    """Tick bytes the server sent per second (the ws-broadcast dialect keeps no such counter)."""
    sent = point["server_stats"].get("bytes_out")
    return f"{sent / point['params']['duration_s'] / 1e6:.2f}" if sent else "—"


def _setting(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _targets_table(report: dict[str, Any]) -> str:
    """The targets the report measured (see `shoal.bench.targets`), met or missed; empty when it measured none."""
    judged = verdicts(report)
    if not judged:
        return ""
    rows = "\n".join(
        f'<tr><td class="what">{html.escape(verdict.target)}</td><td>{html.escape(verdict.limit)}</td>'
        f"<td>{html.escape(verdict.measured)}</td><td>{'met' if verdict.met else '<b>missed</b>'}</td></tr>"
        for verdict in judged
    )
    return (
        "<h2>Targets</h2>\n<table><thead><tr><th>target</th><th>limit</th><th>measured</th><th></th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a `shoal bench` report (see `shoal.bench.sweep`); failed points are listed below."""
    points = [point for point in report["points"] if "error" not in point]
    failures = "".join(
        f"<li>{html.escape(str(p['params']['protocol']))}, {p['params']['clients']} clients: "
        f"{html.escape(p['error'])}</li>"
        for p in report["points"]
        if "error" in p
    )
    x_values = [float(point["params"]["clients"]) for point in points]
    tick_rate = report["settings"].get("tick_rate")
    charts = "\n".join(svg_chart(chart, x_values) for chart in charts_of(points, tick_rate))
    header = "".join(f"<th>{html.escape(name)}</th>" for name, _ in TABLE_COLUMNS)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(value(point)))}</td>" for _, value in TABLE_COLUMNS) + "</tr>"
        for point in points
    )
    idle = report.get("idle")
    idle_line = (
        f"<p>Idle connections: {idle['connections']} cost {idle['kib_per_connection']} KiB of server RSS each "
        f"({idle['protocol']}, load average {' '.join(map(str, idle['loadavg']))}).</p>"
        if idle
        else ""
    )
    machine = html.escape(", ".join(f"{key}: {value}" for key, value in report["machine"].items()))
    settings = html.escape(", ".join(f"{key}: {_setting(value)}" for key, value in report["settings"].items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shoal fan-out benchmark</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; }}
svg {{ font: 12px system-ui, sans-serif; margin: 8px 16px 8px 0; }}
table {{ border-collapse: collapse; margin-top: 16px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td.what {{ text-align: left; }}
</style></head>
<body>
<h1>Shoal fan-out benchmark</h1>
<p>Measured {html.escape(report["measured_at"])}. {machine}.</p>
<p>{settings}.</p>
<div>{charts}</div>
{idle_line}
{_targets_table(report)}
{f"<p>Points that failed:</p><ul>{failures}</ul>" if failures else ""}
<table><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
</body></html>
"""
