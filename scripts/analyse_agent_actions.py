"""What the shipped agents learned: their recorded decisions against the rules, period by period (issue #14, item 8).

Usage (from the repository root)::

    python scripts/analyse_agent_actions.py [RUN_DIR ...] [--rules P,Q,...] [--seeds 0,1,2]
                                            [--out results/agent_actions] [--figure ENV_ID=EPISODE ...]

Default runs: every agent shipped with the leaderboard (``agents/data/leaderboard/agents``). Runs are grouped by
setting (env id and env settings); each setting's agents, the controls (the mix-rule baselines that play the
agents' ``scaled`` action space with a constant action: ``agh-mix`` at multipliers 1 and keep margin 0,
``tuned-mix`` at the shipped tuned one) and the rules are played on the setting's test episodes
(``servegym.agents.action_analysis``). Writes

- ``OUT.json``: per setting, the policy table (cost parts, GPU-hours and rental by GPU type and by model, rental per
  GPU-hour, replica starts, SLO violations), the paired cost differences of each agent against each rule and
  control, the agents' decisions (multipliers per query type by time of day, bound shares, keep margin) and the
  mix levels used; with the command, commit, machine and date;
- ``OUT.md``: the same as tables;
- ``OUT-<env name>.png`` per ``--figure`` (default: the main-job day of the default setting and the first test
  episode of Volatile): on that episode, GPUs rented per period by the setting's cheapest agent (its first training
  seed), the two controls and the first two rules, the agent's multipliers and keep margin (or payback horizon),
  and the cumulative cost difference to the first rule.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from servegym.agents.action_analysis import (
    DEFAULT_RULES,
    AgentRun,
    SettingRecord,
    decision_table,
    mix_levels,
    paired_differences,
    policy_table,
    record_setting,
)
from servegym.agents.adapter import check_run_folder
from servegym.agents.scoring import env_settings
from servegym.agents.shipped_agents import shipped_leaderboard_dir
from servegym.baselines.runner.mix_rule import TUNED_MIX, MixRuleParameters, shipped_mix_parameters
from servegym.baselines.runner.plots import Clock
from servegym.envs.instance import Instance
from servegym.errors import ServegymError
from servegym.io import atomic_write_bytes, atomic_write_json, atomic_write_text, machine_info, run_provenance
from servegym.tables import markdown_table

DEFAULT_FIGURES = (
    ("servegym/Provisioning-v3", "2024-05-16-thu/s0"),
    ("servegym/ProvisioningVolatile-v3", "s0"),
)
"""(env id, episode) of each figure by default: the main job's day and seed, and Volatile's first test episode."""
REPAIR_TOLERANCE_USD = 1e-6
"""Largest gap between the recorded replicas' rental and the episode's that still means no decision was repaired."""
SHOWN_PARTS = ("rental", "delay_penalty", "unmet_penalty", "error_penalty", "reconfiguration")
"""Cost parts the tables show (storage is the same for every policy)."""


def _runs(paths: Sequence[str]) -> dict[tuple[str, str], list[AgentRun]]:
    folders = [Path(p) for p in paths] or sorted(
        p for p in (shipped_leaderboard_dir() / "agents").iterdir() if p.is_dir()
    )
    settings: dict[tuple[str, str], list[AgentRun]] = {}
    for folder in folders:
        config, _, _ = check_run_folder(folder)
        settings.setdefault((config.env_id, env_settings(config)), []).append(AgentRun(folder, config))
    return settings


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _money(value: float) -> str:
    return f"{value:+,.0f}" if abs(value) >= 0.5 else "0"


def _tuned_mix(policies: pd.DataFrame, env_id: str) -> MixRuleParameters | None:
    """The parameters ``tuned-mix`` played, if it is among the setting's policies."""
    if TUNED_MIX not in set(policies["label"]):
        return None
    return shipped_mix_parameters(env_id.split(" ", 1)[0])[0]


def _entry_name(entry: str, type_names: Sequence[str]) -> str:
    """``multiplier[i]`` as ``multiplier, <query type i>``; other entries with spaces for underscores."""
    if entry.startswith("multiplier["):
        return f"multiplier, {type_names[int(entry.removeprefix('multiplier[').removesuffix(']'))]}"
    return entry.replace("_", " ")


def setting_markdown(env_id: str, tables: dict[str, pd.DataFrame], instance: Instance) -> str:
    """The markdown section of one setting."""
    gpus = instance.gpus
    type_names = [query_type.name for query_type in instance.query_types]
    policies = tables["policies"]
    used = [g for g in gpus if policies[f"gpu_hours[{g}]"].max() > 0.0]
    view = pd.DataFrame(
        {
            "policy": policies["label"],
            "kind": policies["kind"],
            "cost $": policies["total_cost"].map(lambda v: f"{v:,.0f}"),
            **{part.replace("_", " ") + " $": policies[part].map(lambda v: f"{v:,.0f}") for part in SHOWN_PARTS},
            "GPU-h": policies["gpu_hours"].map(lambda v: f"{v:,.0f}"),
            "$ / GPU-h": policies["rental_per_gpu_hour"].map(lambda v: f"{v:.2f}"),
            **{f"{g} GPU-h": policies[f"gpu_hours[{g}]"].map(lambda v: f"{v:,.0f}") for g in used},
            "starts": policies["started_replicas"].map(lambda v: f"{v:.0f}"),
            "SLO viol.": policies["slo_violation_rate"].map(lambda v: f"{100.0 * v:.2f} %"),
        }
    )
    pairs = tables["differences"]
    pair_view = pd.DataFrame(
        {
            "agent": pairs["agent"],
            "versus": pairs["versus"],
            "agent cheaper": [f"{a} of {n}" for a, n in zip(pairs["agent_cheaper"], pairs["episodes"], strict=True)],
            "Δ cost $": pairs["diff_total_cost"].map(_money),
            **{f"Δ {part.replace('_', ' ')} $": pairs[f"diff_{part}"].map(_money) for part in SHOWN_PARTS},
        }
    )
    lines = [
        f"### `{env_id}`",
        "",
        *(
            [
                f"`{TUNED_MIX}` plays multiplier {tuned_mix.multiplier:g} and keep margin {tuned_mix.keep_margin:g} "
                "here (`baselines/data/mix_rules.json`, docs/benchmark.md).",
                "",
            ]
            if (tuned_mix := _tuned_mix(policies, env_id)) is not None
            else []
        ),
        "Mean per test episode (agents: also over training seeds).",
        "",
        markdown_table(view),
        "",
        "Paired by episode: the agent (mean over its training seeds) minus the other policy, $ per episode.",
        "",
        markdown_table(pair_view),
        "",
    ]
    decisions = tables["decisions"]
    if len(decisions):
        blocks = [c for c in decisions.columns if c.startswith("mean ") and c != "mean"]
        decision_view = decisions
        lines += [
            "Decisions of the agents (every period of every test episode and training seed): mean, spread and "
            "mean per block of the day; share of periods at the range's bounds.",
            "",
            markdown_table(
                pd.DataFrame(
                    {
                        "agent": decision_view["label"],
                        "entry": decision_view["entry"].map(lambda e: _entry_name(e, type_names)),
                        "mean": decision_view["mean"].map(lambda v: f"{v:.3f}"),
                        "std": decision_view["std"].map(lambda v: f"{v:.3f}"),
                        **{b.removeprefix("mean "): decision_view[b].map(lambda v: f"{v:.3f}") for b in blocks},
                        **{
                            name: decision_view[column].map(lambda v: "—" if pd.isna(v) else f"{100.0 * v:.0f} %")
                            for name, column in (("at lower bound", "at_low"), ("at upper bound", "at_high"))
                            if column in decision_view
                        },
                    }
                )
            ),
            "",
        ]
    levels = tables["mix_levels"]
    if len(levels):
        pivot = levels.pivot(index="label", columns="mix_level", values="share").fillna(0.0)
        lines += [
            "Share of periods provisioned with each mix level ℓ (the `scaled` action space's reference mixes).",
            "",
            markdown_table(
                pd.DataFrame(
                    {
                        "policy": pivot.index,
                        **{
                            f"ℓ = {level:g}": pivot[level].map(lambda v: f"{100.0 * v:.0f} %")
                            for level in pivot.columns
                        },
                    }
                )
            ),
            "",
        ]
    return "\n".join(lines)


FIGURE_RULES = 2
"""How many of ``--rules`` (the first ones) the figure shows beside the agent and the control."""
RULE_COLOURS = ("tab:green", "tab:orange")
"""Colours of those rules in the figure (the agent is black)."""
CONTROL_STYLES = (("tab:red", "--"), ("tab:purple", ":"))
"""Colour and line style of the controls in the figure, in the order the record plays them."""


def plot_episode(record: SettingRecord, episode: str, agent: str, rules: Sequence[str]) -> plt.Figure:
    """GPUs rented per period, the agent's decisions and the cumulative cost difference to the first rule on one
    episode: the agent's first training seed, the controls and the first :data:`FIGURE_RULES` rules, each with
    its cost of the episode in the legend."""
    inst = record.instance
    episodes = record.episodes
    first_seed = episodes.loc[episodes["label"] == agent, "training_seed"].min()
    agent_policy = episodes.loc[
        (episodes["label"] == agent) & (episodes["training_seed"] == first_seed), "policy"
    ].iloc[0]
    shown = {agent_policy: (f"{agent} (training seed {first_seed})", "black", "-")}
    controls = episodes.loc[episodes["kind"] == "control", "policy"].unique()
    for control, (colour, style) in zip(controls, CONTROL_STYLES, strict=False):
        shown[control] = (f"{control} (no learning)" if control != TUNED_MIX else control, colour, style)
    shown |= {rule: (rule, colour, "-") for rule, colour in zip(rules[:FIGURE_RULES], RULE_COLOURS, strict=False)}
    day_cost = episodes[episodes["episode"] == episode].set_index("policy")["total_cost"]
    shown = {
        policy: (f"{name}: ${day_cost[policy]:,.0f}", colour, style) for policy, (name, colour, style) in shown.items()
    }
    found = re.search(r"\d{4}-\d{2}-\d{2}", episode)
    clock = Clock(inst.period_hours * 60.0, date.fromisoformat(found.group()) if found else None)
    figure, (gpus_axis, decision_axis, cost_axis) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    periods = record.periods[record.periods["episode"] == episode]
    decisions = record.decisions[record.decisions["episode"] == episode]
    gpus_per_replica = np.asarray(inst.gpus_per_replica, dtype=float)
    reference = rules[0]
    reference_cost = periods[periods["policy"] == reference].sort_values("period")["total_cost"].to_numpy()
    demand_axis = gpus_axis.twinx()
    demand = periods[periods["policy"] == reference].sort_values("period")
    demand_axis.fill_between(
        clock.hours(demand["period"]), demand["demand_per_hour"], step="post", color="0.88", linewidth=0
    )
    demand_axis.set_ylabel("demand, requests/hour (grey)")
    gpus_axis.set_zorder(demand_axis.get_zorder() + 1)
    gpus_axis.patch.set_visible(False)
    for policy, (name, colour, style) in shown.items():
        mine = decisions[decisions["policy"] == policy].sort_values("period")
        hours = clock.hours(mine["period"])
        gpus = np.stack(mine["replicas"].to_numpy()) @ gpus_per_replica
        gpus_axis.step(hours, gpus, where="post", color=colour, linestyle=style, linewidth=1.2, label=name)
        if policy != reference:
            cost = periods[periods["policy"] == policy].sort_values("period")["total_cost"].to_numpy()
            cost_axis.step(
                hours, np.cumsum(cost - reference_cost), where="post", color=colour, linestyle=style, label=name
            )
    gpus_axis.set_ylabel("GPUs rented (replicas × GPUs each)")
    gpus_axis.legend(loc="upper left", bbox_to_anchor=(1.16, 1.0), fontsize=8)
    gpus_axis.set_title(f"{record.env_id}, episode {episode}")
    mine = decisions[decisions["policy"] == agent_policy].sort_values("period")
    hours = clock.hours(mine["period"])
    for column in [c for c in mine.columns if c.startswith("multiplier[")]:
        index = int(column.removeprefix("multiplier[").removesuffix("]"))
        decision_axis.step(hours, mine[column], where="post", linewidth=1.0, label=inst.query_types[index].name)
    decision_axis.axhline(1.0, color="0.5", linewidth=0.8)
    decision_axis.set_ylabel(f"{agent} (seed {first_seed}):\nmultiplier of the forecast")
    for column, label, top in (
        ("keep_margin", "keep margin k", 0.5),
        ("payback_periods", "payback horizon, periods", None),
    ):
        if column in mine and mine[column].notna().any():
            right_axis = decision_axis.twinx()
            right_axis.step(hours, mine[column], where="post", color="black", linestyle=":")
            right_axis.set_ylabel(f"{label} (dotted)")
            right_axis.set_ylim(0.0, top if top is not None else max(1.0, float(mine[column].max())) * 1.05)
    decision_axis.legend(loc="upper left", bbox_to_anchor=(1.16, 1.0), fontsize=8, title="query type", title_fontsize=8)
    cost_axis.axhline(0.0, color=shown[reference][1], linewidth=1.0)
    cost_axis.set_ylabel(f"cumulative cost minus\n{reference}'s, $")
    cost_axis.legend(loc="upper left", bbox_to_anchor=(1.16, 1.0), fontsize=8)
    clock.format_axis(cost_axis, int(periods["period"].max()) + 1)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run folders (default: the leaderboard's shipped agents)")
    parser.add_argument("--rules", default=",".join(DEFAULT_RULES), help="comma-separated baseline names")
    parser.add_argument("--seeds", default="0,1,2", help="episode seeds")
    parser.add_argument(
        "--out", default="results/agent_actions", help="prefix of OUT.json, OUT.md and OUT-<env name>.png"
    )
    parser.add_argument(
        "--figure",
        action="append",
        metavar="ENV_ID=EPISODE",
        help="a figure of one episode of a setting (repeatable; default: "
        + ", ".join(f"{env_id}={episode}" for env_id, episode in DEFAULT_FIGURES)
        + ")",
    )
    args = parser.parse_args(argv)
    figures = DEFAULT_FIGURES if args.figure is None else [tuple(spec.split("=", 1)) for spec in args.figure]
    for spec in figures:
        if len(spec) != 2 or not all(spec):
            parser.error(
                f"--figure {'='.join(spec)!r}: give ENV_ID=EPISODE, e.g. servegym/Provisioning-v3=2024-05-16-thu/s0"
            )
    rules = [r for r in args.rules.split(",") if r]
    if not rules:
        parser.error("--rules: give at least one baseline")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: comma-separated integers")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict = {**run_provenance(), "machine": machine_info(()), "rules": rules, "seeds": seeds, "settings": {}}
    sections = []
    records: dict[str, SettingRecord] = {}
    try:
        settings_runs = sorted(_runs(args.runs).items())
    except ServegymError as error:
        print(f"analyse_agent_actions: {error}", file=sys.stderr)
        return 2
    env_ids = sorted({env_id for (env_id, _), _ in settings_runs})
    unknown = [f"{env_id}={episode}" for env_id, episode in figures if env_id not in env_ids]
    if unknown and args.figure is not None:
        parser.error(f"--figure {unknown}: no run of that setting; the runs' settings are {env_ids}")
    figures = [(env_id, episode) for env_id, episode in figures if env_id in env_ids]
    for (env_id, settings), runs in settings_runs:
        start = time.perf_counter()
        record = record_setting(runs, rules, seeds)
        tables = {
            "policies": policy_table(record),
            "differences": paired_differences(record),
            "decisions": decision_table(record),
            "mix_levels": mix_levels(record),
        }
        rental_gap = float(
            np.max(
                np.abs(
                    tables["policies"][[f"rental[{g}]" for g in record.instance.gpus]].sum(axis=1)
                    - tables["policies"]["rental"]
                )
            )
        )
        key = env_id if not settings or settings == "{}" else f"{env_id} {settings}"
        report["settings"][key] = {
            "runs": [str(run.path) for run in runs],
            "episode_labels": sorted(set(record.episodes["episode"])),
            "wall_s": time.perf_counter() - start,
            "max_rental_mismatch_usd": rental_gap,
            **{name: _records(table) for name, table in tables.items()},
        }
        sections.append(setting_markdown(key, tables, record.instance))
        print(f"{key}: {len(runs)} runs, {report['settings'][key]['wall_s']:.0f} s", file=sys.stderr)
        records.setdefault(env_id, record)
        atomic_write_json(out.with_suffix(".json"), report)
    mismatch = max(setting["max_rental_mismatch_usd"] for setting in report["settings"].values())
    machine = report["machine"]
    header = (
        f"`python scripts/analyse_agent_actions.py` of {report['date']} (commit `{report['commit']}`, "
        f"{machine['cpu_count']} × {machine['cpu_model']}, load average {machine['load_average_1min']} at start), "
        f"episode seeds {', '.join(map(str, seeds))}; the controls play the agents' `scaled` action space with a "
        f"constant action: `agh-mix` at multipliers 1 and keep margin 0, `{TUNED_MIX}` at the one tuned per "
        "setting. Costs in $ per episode (a day). The recorded replicas give each "
        f"policy's rental to within ${mismatch:.2g} "
        + (
            "(the env repaired no decision)."
            if mismatch < REPAIR_TOLERANCE_USD
            else "(the env repaired some decisions: the fleet columns count the replicas asked for)."
        )
    )
    atomic_write_text(out.with_suffix(".md"), header + "\n\n" + "\n".join(sections))
    print(header + "\n\n" + "\n".join(sections))
    missing = []
    for env_id, episode in figures:
        record = records.get(env_id)
        if record is None or episode not in set(record.episodes["episode"]):
            played = sorted(set(record.episodes["episode"])) if record is not None else sorted(records)
            missing.append(
                f"--figure {env_id}={episode}: not played ({'episodes' if record else 'settings'}: {played})"
            )
            continue
        agents = record.episodes[record.episodes["kind"] == "agent"]
        agent = agents.groupby("label")["total_cost"].mean().idxmin()
        figure = plot_episode(record, episode, agent, rules)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        atomic_write_bytes(f"{out}-{env_id.rsplit('/', 1)[-1]}.png", buffer.getvalue())
    for line in missing:
        print(f"analyse_agent_actions: {line}; no figure written", file=sys.stderr)
    if missing:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
