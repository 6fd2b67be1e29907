"""Counters for the Prometheus text exposition at ``GET /metrics``.

Plain integer attributes, not a metrics library: the send path bumps them per
write to thousands of clients, and an attribute add is the cheapest thing there.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from townhall.protocol.messages import ROLES
from townhall.server.core.counters import SUMMARY_WINDOW, Counters

# Upper bounds of the tick-lag histogram (seconds): counts are cumulative over the run, so
# a benchmark can subtract two scrapes and get the distribution of any stretch of time.
TICK_LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
                    0.2, 0.3, 0.5, 1.0, 2.0)  # fmt: skip


@dataclass
class Metrics(Counters):
    """Everything the server counts; rendered on scrape."""

    messages_out: int = 0
    bytes_out: int = 0
    frames_dropped: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # handshakes refused, by reason
    open_connections: int = 0  # WebSockets this process holds, joined or not
    ticks: int = 0
    tick_errors: int = 0
    tick_lag_last_s: float = 0.0
    tick_lag_max_s: float = 0.0
    tick_lag_sum_s: float = 0.0
    tick_busy_sum_s: float = 0.0

    tick_lag_counts: list[int] = field(default_factory=lambda: [0] * (len(TICK_LAG_BUCKETS) + 1))

    def observe_tick(self, lag_s: float, busy_s: float) -> None:
        self.ticks += 1
        self.tick_lag_last_s = lag_s
        self.tick_lag_max_s = max(self.tick_lag_max_s, lag_s)
        self.tick_lag_sum_s += lag_s
        self.tick_busy_sum_s += busy_s
        self.tick_lag_counts[bisect_left(TICK_LAG_BUCKETS, lag_s)] += 1

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
        metric(
            "handshakes_refused_total",
            "counter",
            "WebSocket handshakes refused (origin, connection_limit).",
            [(f'{{reason="{k}"}}', v) for k, v in sorted(self.refused.items())],
        )
        metric(
            "open_connections",
            "gauge",
            "WebSocket connections this process holds, joined or not.",
            [("", self.open_connections)],
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
        cumulative = 0
        buckets = []
        for bound, count in zip((*TICK_LAG_BUCKETS, "+Inf"), self.tick_lag_counts, strict=True):
            cumulative += count
            buckets.append((f'_bucket{{le="{bound}"}}', cumulative))
        out.append("# HELP townhall_tick_lag_hist_seconds How late ticks started (all ticks).")
        out.append("# TYPE townhall_tick_lag_hist_seconds histogram")
        for labels, value in buckets:
            out.append(f"townhall_tick_lag_hist_seconds{labels} {value}")
        out.append(f"townhall_tick_lag_hist_seconds_sum {round(self.tick_lag_sum_s, 6)}")
        out.append(f"townhall_tick_lag_hist_seconds_count {self.ticks}")
        metric(
            "tick_busy_seconds_total",
            "counter",
            "Time spent inside ticks.",
            [("", round(self.tick_busy_sum_s, 6))],
        )
        for name, window in sorted(self.summaries.items()):
            values = np.asarray(window)
            samples: list[tuple[str, float]] = [
                (f'{{quantile="{q}"}}', round(float(np.quantile(values, q)), 6))
                for q in (0.5, 0.95)
            ]
            samples.append(("_count", len(values)))
            out.append(f"# HELP townhall_{name} Recent {name} (last {SUMMARY_WINDOW}).")
            out.append(f"# TYPE townhall_{name} summary")
            for labels, sample in samples:
                if labels == "_count":
                    out.append(f"townhall_{name}_count {sample}")
                else:
                    out.append(f"townhall_{name}{labels} {sample}")
        return "\n".join(out) + "\n"
