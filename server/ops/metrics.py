"""Counters for the Prometheus text exposition at ``GET /metrics``.

Plain integer attributes, not a metrics library: the send path bumps them per
write to thousands of clients, and an attribute add is the cheapest thing there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from townhall.protocol.messages import ROLES
from townhall.server.core.counters import SUMMARY_WINDOW, Counters


@dataclass
class Metrics(Counters):
    """Everything the server counts; rendered on scrape."""

    messages_out: int = 0
    bytes_out: int = 0
    frames_dropped: int = 0
    ticks: int = 0
    tick_errors: int = 0
    tick_lag_last_s: float = 0.0
    tick_lag_max_s: float = 0.0
    tick_lag_sum_s: float = 0.0
    tick_busy_sum_s: float = 0.0

    def observe_tick(self, lag_s: float, busy_s: float) -> None:
        self.ticks += 1
        self.tick_lag_last_s = lag_s
        self.tick_lag_max_s = max(self.tick_lag_max_s, lag_s)
        self.tick_lag_sum_s += lag_s
        self.tick_busy_sum_s += busy_s

    def render(
        self, connections_by_role: Mapping[str, int], members_by_role: Mapping[str, int]
    ) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP townhall_{name} {help_}")
            out.append(f"# TYPE townhall_{name} {kind}")
            for labels, value in samples:
                out.append(f"townhall_{name}{labels} {value}")

        roles = ROLES
        metric(
            "connections",
            "gauge",
            "Open joined connections by role.",
            [(f'{{role="{r}"}}', connections_by_role.get(r, 0)) for r in roles],
        )
        metric(
            "members",
            "gauge",
            "Participants in the room (including those within the resume window) by role.",
            [(f'{{role="{r}"}}', members_by_role.get(r, 0)) for r in roles],
        )
        metric(
            "messages_in_total", "counter", "Client messages received.", [("", self.messages_in)]
        )
        metric("bytes_in_total", "counter", "Client payload bytes received.", [("", self.bytes_in)])
        metric(
            "messages_out_total",
            "counter",
            "Messages written to clients.",
            [("", self.messages_out)],
        )
        metric(
            "bytes_out_total",
            "counter",
            "Bytes written to clients (framed).",
            [("", self.bytes_out)],
        )
        metric(
            "frames_dropped_total",
            "counter",
            "Droppable frames skipped for clients that fell behind.",
            [("", self.frames_dropped)],
        )
        metric(
            "errors_sent_total",
            "counter",
            "Error messages sent, by code.",
            [(f'{{code="{k}"}}', v) for k, v in sorted(self.errors_sent.items())],
        )
        metric(
            "closes_total",
            "counter",
            "Connections closed by the server, by reason.",
            [(f'{{reason="{k}"}}', v) for k, v in sorted(self.closes.items())],
        )
        metric("joins_total", "counter", "Successful joins.", [("", self.joins)])
        metric("resumes_total", "counter", "Joins that resumed a session.", [("", self.resumes)])
        metric("ticks_total", "counter", "Room ticks run.", [("", self.ticks)])
        metric(
            "tick_errors_total", "counter", "Ticks that failed (a bug).", [("", self.tick_errors)]
        )
        metric(
            "tick_lag_seconds",
            "gauge",
            "How late the last tick started.",
            [("", round(self.tick_lag_last_s, 6))],
        )
        metric(
            "tick_lag_max_seconds",
            "gauge",
            "Latest tick start seen since start.",
            [("", round(self.tick_lag_max_s, 6))],
        )
        metric(
            "tick_lag_seconds_total",
            "counter",
            "Sum of tick lateness (divide by ticks_total for the mean).",
            [("", round(self.tick_lag_sum_s, 6))],
        )
        metric(
            "tick_busy_seconds_total",
            "counter",
            "Time spent inside ticks.",
            [("", round(self.tick_busy_sum_s, 6))],
        )
        for name, window in sorted(self.summaries.items()):
            values = np.asarray(window)
            samples = [
                (f'{{quantile="{q}"}}', round(float(np.quantile(values, q)), 6))
                for q in (0.5, 0.95)
            ]
            samples.append(("_count", len(values)))
            out.append(f"# HELP townhall_{name} Recent {name} (last {SUMMARY_WINDOW}).")
            out.append(f"# TYPE townhall_{name} summary")
            for labels, value in samples:
                if labels == "_count":
                    out.append(f"townhall_{name}_count {value}")
                else:
                    out.append(f"townhall_{name}{labels} {value}")
        return "\n".join(out) + "\n"
