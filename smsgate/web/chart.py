"""A bar chart of messages per hour with the delivery rate as a line, as numbers for an SVG template.

Drawn server-side: no JavaScript library, no CDN, nothing for the Content-Security-Policy to allow.
Only numbers and hour labels reach the template, never message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smsgate.clinic_time import ClinicClock

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 40, 10, 30


@dataclass
class Bar:
    x: float
    width: float
    sent_y: float
    sent_h: float
    recv_y: float
    recv_h: float
    label: str
    title: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    rate_points: str = ""
    y_max: int = 0
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT


def hourly_chart(rows: list[dict[str, Any]], clock: ClinicClock) -> Chart:
    """`rows` from `views.hourly`: one per hour with queued, received, delivered, failed counts; hours are
    labelled in the clinic's zone."""
    chart = Chart()
    if not rows:
        return chart
    plot_h = chart.plot_bottom - chart.plot_top
    slot = (chart.plot_right - chart.plot_left) / len(rows)
    y_max = max(1, *(max(r["queued"], r["received"]) for r in rows))
    chart.y_max = y_max
    points = []
    for i, r in enumerate(rows):
        x = chart.plot_left + i * slot
        sent_h = plot_h * r["queued"] / y_max
        recv_h = plot_h * r["received"] / y_max
        finished = r["delivered"] + r["failed"]
        rate = r["delivered"] / finished if finished else None
        local = r["hour"].astimezone(clock.zone)
        hour = local.strftime("%H" if local.minute == 0 else "%H:%M")
        title = f"{local:%H:%M %Z}: {r['queued']} queued, {r['received']} received"
        if rate is not None:
            title += f", {rate:.0%} delivered"
            points.append(f"{x + slot / 2:.1f},{chart.plot_bottom - plot_h * rate:.1f}")
        chart.bars.append(Bar(
            x=round(x + 1, 1), width=round(max(slot / 2 - 1, 1), 1),
            sent_y=round(chart.plot_bottom - sent_h, 1), sent_h=round(sent_h, 1),
            recv_y=round(chart.plot_bottom - recv_h, 1), recv_h=round(recv_h, 1),
            label=hour if i % 3 == 0 else "", title=title,
        ))
    chart.rate_points = " ".join(points)
    return chart
