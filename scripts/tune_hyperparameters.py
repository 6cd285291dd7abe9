"""Tune an agent's hyperparameters on the validation day (Optuna TPE, the defaults as trial 0), freeze the best.

Usage (from the repository root)::

    python scripts/tune_hyperparameters.py [--algo ppo] [--action scaled] [--headroom-planner agh]
        [--env servegym/Provisioning-v3] [--trials 12] [--timesteps 200000] [--seed 0] [--train-seed 0]
        [--n-envs 8] [--vec-env dummy] [--work runs/tune_hyperparameters/LABEL]
        [--finalists 3] [--finalist-seeds 1,2] [--out results/tune_hyperparameters/LABEL] [--fresh] [--no-docs]

Runs ``servegym.agents.hyperparameter_search.tune_hyperparameters``: each trial trains ``--timesteps`` steps of
``--algo`` on ``--action`` (training seed ``--train-seed``, evaluated on the validation day every ``--eval-freq``
steps) and is judged by its last evaluations' mean reward; then the ``--finalists`` best trials and the defaults
are trained again at ``--finalist-seeds`` and the finalist of highest mean objective is chosen. The trials' and
finalists' run folders and the Optuna journal go to ``--work`` (a killed search resumes there; ``--fresh`` starts
over), the report to ``--out/tune.json`` and ``--out/tune.md`` (every trial, the finalists, the choice, machine,
commit, load, wall time; the table also into the ``tune-hyperparameters-LABEL`` block of docs/agents.md where it
has one, unless ``--no-docs``), and the ``servegym train`` command that trains the chosen hyperparameters is
printed. Test days are never played here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from servegym.agents.hyperparameter_search import (
    OBJECTIVE_EVALUATIONS,
    TrialRecord,
    chosen_trial,
    finalists_of,
    rerun_finalists,
    search_space,
    tune_hyperparameters,
)
from servegym.agents.train_config import HEADROOM_PLANNERS, TrainConfig
from servegym.cli._common import seeds
from servegym.envs import DEFAULT_ENV_ID
from servegym.errors import ServegymError
from servegym.io import (
    atomic_write_json,
    atomic_write_text,
    block_markers,
    marked_block_span,
    replace_marked_block,
    run_provenance,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
"""Document whose ``tune-hyperparameters-LABEL`` block (where it has one) shows the report (unless ``--no-docs``)."""


def markdown_table(report: dict) -> str:
    """Every trial as a Markdown row, best objective first, with what the search was."""
    names = list(report["space"])
    lines = [
        f"{report['algo']} × `{report['action']}` on `{report['env_id']}` ({report['headroom_planner']} mixes), "
        f"{report['trials']} trials of {report['timesteps']:,} steps each (training seed {report['train_seed']}, "
        f"sampler seed {report['seed']}), {sum(t['wall_s'] for t in report['all_trials']) / 60:.0f} min of training "
        f"in all; report of {report['date'][:16]} UTC at commit {report['commit']}; objective = mean validation "
        "reward of the last "
        f"{OBJECTIVE_EVALUATIONS} evaluations (higher is better).",
        "",
        "| trial | source | objective | last | best | "
        + " | ".join(n.removeprefix("policy_kwargs.") for n in names)
        + " | min |",
        "|" + "---|" * (len(names) + 6),
    ]
    for t in sorted(report["all_trials"], key=lambda t: -t["objective"]):
        values = [_cell(t["drawn"][n]) for n in names]
        lines.append(
            f"| {t['number']} | {t['source']} | {t['objective']:.2f} | {t['validation_rewards'][-1]:.2f} | "
            f"{max(t['validation_rewards']):.2f} | " + " | ".join(values) + f" | {t['wall_s'] / 60:.1f} |"
        )
    seeds = report["finalist_seeds"]
    lines += [
        "",
        f"Finalists trained again (objective per training seed; chosen: trial {report['best']['number']}, the highest "
        "mean):",
        "",
        "| trial | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
        "|" + "---|" * (len(seeds) + 2),
    ]
    for number, by_seed in report["finalists"].items():
        values = [by_seed[str(s)] for s in seeds]
        lines.append(
            f"| {number} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {sum(values) / len(values):.2f} |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def train_command(report: dict) -> str:
    """The ``servegym train`` command of the chosen hyperparameters (three training seeds, the protocol's)."""
    best = report["best"]
    return (
        f"servegym train --algo {report['algo']} --action {report['action']} --env {report['env_id']} "
        f"--headroom-planner {report['headroom_planner']} --n-envs {report['n_envs']} --vec-env {report['vec_env']} "
        f"--torch-threads 1 --seeds 0,1,2 --hyperparameters '{json.dumps(best['hyperparameters'])}' "
        f"--out 'runs/{report['algo']}-{report['action']}-tuned-{report['env_id'].split('/')[-1]}-s{{seed}}'"
    )


def seed_list(text: str) -> list[int]:
    """``--finalist-seeds``: as ``servegym``'s ``--seeds`` (comma-separated integers ≥ 0), or empty for none."""
    return seeds(text) if text.strip() else []


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the search; a bad setting prints one line naming it and returns 2."""
    try:
        return run(argv)
    except ServegymError as error:
        print(f"tune_hyperparameters: error: {error}", file=sys.stderr)
        return 2


def run(argv: list[str] | None) -> int:
    """:func:`main` without the error handling."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="ppo", help="algorithm with a search space (ppo, recurrent_ppo, sac)")
    parser.add_argument("--action", default="scaled", help="action space (scaled or headroom)")
    parser.add_argument("--headroom-planner", default="agh", choices=HEADROOM_PLANNERS, help="planner of the mixes")
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help=f"registered id (default {DEFAULT_ENV_ID})")
    parser.add_argument("--trials", type=int, default=12, help="trials, the defaults included (default 12)")
    parser.add_argument("--timesteps", type=int, default=200_000, help="env steps per trial (default 200000)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    parser.add_argument("--train-seed", type=int, default=0, help="training seed of every trial (default 0)")
    parser.add_argument("--n-envs", type=int, default=8, help="training envs per trial (default 8)")
    parser.add_argument("--vec-env", default="dummy", help="dummy or subproc (default dummy)")
    parser.add_argument("--eval-freq", type=int, default=9_600, help="steps between validation evaluations")
    parser.add_argument("--work", type=Path, help="journal and trial runs (default runs/tune_hyperparameters/LABEL)")
    parser.add_argument("--out", type=Path, help="report folder (default results/tune_hyperparameters/LABEL)")
    parser.add_argument("--finalists", type=int, default=3, help="best trials trained again (default 3)")
    parser.add_argument(
        "--finalist-seeds",
        type=seed_list,
        default=[1, 2],
        help="comma-separated training seeds of the finalists' re-runs (default 1,2; '' for none)",
    )
    parser.add_argument("--fresh", action="store_true", help="discard an earlier search in --work")
    parser.add_argument("--no-docs", action="store_true", help="leave the block of docs/agents.md as it is")
    args = parser.parse_args(argv)
    label = f"{args.algo}-{args.action}-{args.env.split('/')[-1]}"
    work = args.work or Path("runs/tune_hyperparameters") / label
    out = args.out or Path("results/tune_hyperparameters") / label
    base = TrainConfig(
        out_dir=str(work / "base"),
        algo=args.algo,
        action=args.action,
        env_id=args.env,
        total_timesteps=args.timesteps,
        seed=args.train_seed,
        n_envs=args.n_envs,
        vec_env=args.vec_env,
        headroom_planner=args.headroom_planner,
        eval_freq=args.eval_freq,
        checkpoint_freq=max(args.eval_freq, 49_152),
    )
    space = search_space(args.algo)
    if args.fresh and work.exists():
        shutil.rmtree(work)
    started, load_before = time.perf_counter(), os.getloadavg()[0]

    def progress(record: TrialRecord) -> None:
        print(
            f"trial {record.number:3d} ({record.source}): objective {record.objective:9.3f}, last "
            f"{record.validation_rewards[-1]:9.3f}, {record.wall_s / 60:5.1f} min  {record.drawn}",
            file=sys.stderr,
            flush=True,
        )

    records = tune_hyperparameters(base, args.trials, work, seed=args.seed, on_trial=progress)
    finalist_seeds = args.finalist_seeds
    finalists = finalists_of(records, args.finalists)
    objectives = rerun_finalists(
        base,
        finalists,
        finalist_seeds,
        work,
        on_run=lambda n, s, o: print(f"finalist {n:3d}, training seed {s}: objective {o:9.3f}", file=sys.stderr),
    )
    best = records[chosen_trial(objectives)]
    report = {
        **run_provenance(),
        "algo": args.algo,
        "action": args.action,
        "env_id": args.env,
        "headroom_planner": args.headroom_planner,
        "trials": args.trials,
        "timesteps": args.timesteps,
        "seed": args.seed,
        "train_seed": args.train_seed,
        "n_envs": args.n_envs,
        "vec_env": args.vec_env,
        "eval_freq": args.eval_freq,
        "objective": f"mean validation reward of the last {OBJECTIVE_EVALUATIONS} evaluations",
        "space": {name: [kind, list(domain)] for name, (kind, domain) in space.items()},
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(time.perf_counter() - started, 1),
        "finalist_seeds": [args.train_seed, *[s for s in finalist_seeds if s != args.train_seed]],
        "finalists": {str(n): {str(s): o for s, o in by_seed.items()} for n, by_seed in objectives.items()},
        "best": {
            "number": best.number,
            "objective": best.objective,
            "mean_objective_over_seeds": float(sum(objectives[best.number].values()) / len(objectives[best.number])),
            "hyperparameters": best.hyperparameters,
        },
        "all_trials": [dataclasses.asdict(r) for r in records],
    }
    report["train_command"] = train_command(report)
    atomic_write_json(out / "tune.json", report)
    table = markdown_table(report)
    command = f"\nTrain the chosen hyperparameters:\n\n```bash\n{report['train_command']}\n```\n"
    atomic_write_text(out / "tune.md", table + command)
    begin, end = block_markers(f"tune-hyperparameters-{label}", "scripts/tune_hyperparameters.py")
    if not args.no_docs and marked_block_span(DOC.read_text(encoding="utf-8"), begin, end) is not None:
        replace_marked_block(DOC, begin, end, table)
    print(table)
    print(report["train_command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
