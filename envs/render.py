"""The ``rgb_array`` picture of a provisioning environment's current state (what ``render()`` returns).

Two panels drawn with matplotlib's Agg canvas (no display, no pyplot state): the replicas rented per candidate
configuration (ready and still starting; the most rented first), and each query type's realised demand over the
periods the observation remembers, requests/hour. The title carries the period, the clock time and the last
period's SLO outcomes. Frames are ``RENDER_SIZE`` pixels, the same for every state, so a video
recorder can stack them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from servegym.envs.provisioning import ProvisioningEnv

RENDER_SIZE = (480, 640)
"""(height, width) of an ``rgb_array`` frame, pixels."""
_DPI = 80
_MAX_BARS = 24
"""Candidates drawn at most (the rented ones first)."""


def render_rgb(env: ProvisioningEnv) -> np.ndarray:
    """An (H, W, 3) uint8 image of ``env`` now (after ``reset``); reads its state, changes nothing.

    Args:
        env: The unwrapped environment.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = RENDER_SIZE
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(figure)
    replicas_axis, demand_axis = figure.subplots(2, 1, height_ratios=(3, 2))
    instance = env.instance
    state = env.state
    rented = env.replicas.rented
    pending = env.replicas.pending()
    order = np.argsort(-rented, kind="stable")[:_MAX_BARS]
    positions = np.arange(len(order))
    ready = rented[order] - pending[order]
    replicas_axis.bar(positions, ready, color="tab:blue", label="ready")
    replicas_axis.bar(positions, pending[order], bottom=ready, color="tab:orange", label="starting")
    replicas_axis.set_xticks(positions, [instance.configurations[c].name for c in order], rotation=60, ha="right")
    replicas_axis.tick_params(axis="x", labelsize=6)
    replicas_axis.set_ylabel("replicas")
    replicas_axis.legend(loc="upper right", fontsize=7)
    lags = np.arange(-len(state.history) + 1, 1) * env.period_minutes
    for q, query_type in enumerate(instance.query_types):
        demand_axis.plot(lags, state.history[:, q], marker=".", label=query_type.name)
    demand_axis.set_xlabel("minutes before now")
    demand_axis.set_ylabel("demand, requests/hour")
    demand_axis.legend(loc="upper left", fontsize=6, ncol=max(1, len(instance.query_types) // 4))
    minutes = (state.demand.start_minute_of_day + state.period * env.period_minutes) % 1440
    delay, error, unserved, _ = state.last_slo
    figure.suptitle(
        f"period {state.period}/{env.num_periods}, {minutes // 60:02d}:{minutes % 60:02d}; last period: delay "
        f"violations {100 * delay:.2f} %, error {100 * error:.2f} %, unserved {100 * unserved:.2f} %",
        fontsize=8,
    )
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
