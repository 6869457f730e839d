"""The benchmark's HTML charts: logarithmic axes that keep Shoal's figures and the targets readable beside a
saturated relay's."""

from __future__ import annotations

import re

import pytest

from shoal.bench.plot import HEIGHT, MARGIN_BOTTOM, MARGIN_TOP, Chart, Series, log_ticks, svg_chart


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0.7, 4.9, [0.5, 1.0, 2.0, 5.0]),  # within two decades: 1, 2 and 5 of each
        (0.295, 7794.8, [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]),  # wider: the powers of ten alone
        (1.0, 10.0, [1.0, 2.0, 5.0, 10.0]),
        (0.5, 0.5, [0.5, 1.0]),  # one value: two ticks all the same
        (10.0, 10.0, [10.0, 20.0]),
    ],
)
def test_log_ticks_cover_the_range_with_round_values(low: float, high: float, ticks: list[float]) -> None:
    assert log_ticks(low, high) == ticks


def _circle_heights(svg: str) -> list[float]:
    return [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]


def _reference_height(svg: str) -> float:
    match = re.search(r'<line x1="\d+" x2="\d+" y1="([\d.]+)" y2="[\d.]+" stroke="#c00"', svg)
    assert match
    return float(match.group(1))


def test_a_log_chart_keeps_milliseconds_apart_beside_seconds_and_the_target_between_them() -> None:
    """p99s of 40 and 80 ms around a 60 ms target, beside a saturated relay's 8 s: on a linear axis all three
    would sit within a pixel or two of the bottom; on the log axis the target lies visibly between them."""
    chart = Chart(
        "Latency",
        "ms (log scale)",
        [Series("shoal", "#000", [(200.0, 40.0), (1000.0, 80.0)]), Series("relay", "#777", [(1000.0, 8000.0)])],
        references=[("target", 60.0)],
        log_y=True,
    )
    svg = svg_chart(chart, [200.0, 1000.0])
    shoal_40, shoal_80, relay = _circle_heights(svg)
    target = _reference_height(svg)
    assert shoal_40 - target > 5 and target - shoal_80 > 5  # SVG y grows downwards; 0.4 px on a linear axis
    assert relay < shoal_80 and relay >= MARGIN_TOP  # the highest value is inside the frame
    assert 'stroke="#fff" stroke-width="3" paint-order="stroke">target</text>' in svg  # a halo keeps it legible


def test_a_log_chart_puts_values_of_zero_on_its_bottom_edge() -> None:
    """A p50 of 0 ms (a relay on loopback can round to it) has no logarithm: it is drawn at the bottom."""
    chart = Chart("Latency", "ms", [Series("relay", "#777", [(50.0, 0.0), (100.0, 3.0), (200.0, 30.0)])], log_y=True)
    zero, three, thirty = _circle_heights(svg_chart(chart, [50.0, 100.0, 200.0]))
    assert zero == pytest.approx(HEIGHT - MARGIN_BOTTOM, abs=0.1) and thirty < three < zero
