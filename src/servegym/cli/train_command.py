"""``servegym train``: train an SB3 agent (needs the rl extra); resumes from the last checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servegym.cli._common import (
    DEMAND_HELP,
    add_alias,
    add_catalog_argument,
    add_env_argument,
    add_env_kwargs_argument,
    json_object,
    no_progress_argument,
    positive_int,
    seeds,
)
from servegym.errors import UsageError
from servegym.io import check_output_folder

NAME = "train"
SEED_FIELD = "{seed}"
"""The placeholder of ``--out`` that each training seed replaces."""
HELP = "train an SB3 agent (needs the rl extra); resumes from the last checkpoint"
EXAMPLE = "servegym train --algo maskable_ppo --total-timesteps 200000 --seeds 0,1,2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Algorithm, action space, environment, run length and the trainer's settings (defaults: ``TrainConfig``)."""
    from servegym.agents.train_config import ACTIONS, ALGORITHMS, HEADROOM_PLANNERS, VEC_ENVS, TrainConfig

    defaults = TrainConfig(out_dir="")
    parser.add_argument("--algo", choices=list(ALGORITHMS), default=defaults.algo, help="learning algorithm")
    parser.add_argument("--action", choices=ACTIONS, default=defaults.action, help="action space (docs/agents.md)")
    add_env_argument(parser, "environment id")
    add_env_kwargs_argument(parser)
    parser.add_argument(
        "--demand",
        metavar="SOURCE",
        help=DEMAND_HELP + "; validation plays the trace's validation day (default: the id's own demand)",
    )
    add_catalog_argument(parser)
    parser.add_argument(
        "--total-timesteps",
        type=positive_int,
        default=defaults.total_timesteps,
        metavar="STEPS",
        help="total env steps (rounded up to whole rollouts)",
    )
    add_alias(parser, "--timesteps", "--total-timesteps", "total_timesteps", type=positive_int)
    parser.add_argument(
        "--seeds",
        type=seeds,
        default=[defaults.seed],
        metavar="S[,S...]",
        help="training seeds (integers >= 0), one run folder each, trained one after another",
    )
    add_alias(parser, "--seed", "--seeds", "seeds", type=seeds)
    parser.add_argument("--n-envs", type=positive_int, default=defaults.n_envs, help="parallel environments")
    parser.add_argument(
        "--vec-env",
        choices=VEC_ENVS,
        default=defaults.vec_env,
        help="run the --n-envs envs in worker processes (subproc) or all in the trainer's process (dummy)",
    )
    parser.add_argument(
        "--out",
        help=f"run folder (default: runs/<name>-<env>-s<seed>); with several --seeds it must contain {SEED_FIELD}",
    )
    parser.add_argument("--name", help="label in scores and leaderboards (default: <algo>-<action>)")
    parser.add_argument(
        "--hyperparameters",
        type=json_object,
        default={},
        metavar="JSON",
        help="JSON object overriding the algorithm's defaults (servegym.agents.train_config.DEFAULT_HYPERPARAMETERS); "
        "default: {}, none overridden",
    )
    parser.add_argument("--eval-freq", type=positive_int, default=defaults.eval_freq, help="steps between evaluations")
    parser.add_argument(
        "--eval-episodes", type=positive_int, default=defaults.eval_episodes, help="validation episodes"
    )
    parser.add_argument(
        "--checkpoint-freq", type=positive_int, default=defaults.checkpoint_freq, help="steps between checkpoints"
    )
    parser.add_argument("--headroom-low", type=float, default=defaults.headroom_low, help="lowest demand multiplier")
    parser.add_argument("--headroom-high", type=float, default=defaults.headroom_high, help="highest demand multiplier")
    parser.add_argument(
        "--headroom-planner",
        choices=HEADROOM_PLANNERS,
        default=defaults.headroom_planner,
        help="planner of the headroom action, and whose plans give the scaled action's configuration mixes",
    )
    parser.add_argument(
        "--headroom-max-payback",
        type=float,
        default=defaults.headroom_max_payback_periods,
        metavar="PERIODS",
        help="largest switching payback horizon the agent may choose, periods (0: no patience dimension)",
    )
    parser.add_argument(
        "--slo-price",
        type=float,
        default=defaults.slo_price_per_request,
        metavar="DOLLARS",
        help="$ the training reward charges per request that misses an SLO, on top of the cost (default 0: cost only)",
    )
    parser.add_argument("--no-norm-obs", action="store_true", help="do not normalise observations")
    parser.add_argument("--no-norm-reward", action="store_true", help="do not normalise rewards")
    parser.add_argument("--torch-threads", type=positive_int, default=defaults.torch_threads, help="torch threads")
    parser.add_argument("--resume", action="store_true", help="fail unless the run folder has a checkpoint")
    no_progress_argument(parser)


def _train_env_kwargs(args: argparse.Namespace) -> dict:
    """``--env-kwargs`` with ``--demand`` and ``--catalog`` (absolute path, so the run folder is portable) added."""
    kwargs = dict(args.env_kwargs)
    for flag, key, value in (("--demand", "demand", args.demand), ("--catalog", "catalog", args.catalog)):
        if value is None:
            continue
        if key in kwargs:
            raise UsageError(f"{flag} and --env-kwargs '{key}' both given; pass one")
        kwargs[key] = str(Path(value).resolve()) if key == "catalog" else value
    return kwargs


def _run_folders(args: argparse.Namespace, name: str) -> list[tuple[int, str]]:
    """(seed, run folder) of every training seed: ``--out`` with ``{seed}`` replaced, or the default name."""
    if args.out is None:
        return [(seed, str(Path("runs") / f"{name}-{args.env.split('/')[-1]}-s{seed}")) for seed in args.seeds]
    if SEED_FIELD not in args.out and len(args.seeds) > 1:
        raise UsageError(
            f"--out {args.out!r} names one run folder but --seeds gives {len(args.seeds)} seeds; put {SEED_FIELD} "
            f"in it (e.g. --out runs/{name}-s{SEED_FIELD})"
        )
    return [(seed, args.out.replace(SEED_FIELD, str(seed))) for seed in args.seeds]


def run(args: argparse.Namespace) -> int:
    """Train (or resume) one run per seed, in order; status 130 when interrupted (the interrupted run's latest
    checkpoint is kept, and the same command resumes from it, skipping nothing)."""
    from servegym.agents.train import TrainConfig, require_rl, train

    require_rl()
    name = args.name or f"{args.algo}-{args.action}"
    folders = _run_folders(args, name)
    if len({out for _, out in folders}) < len(folders):
        raise UsageError(f"--seeds {','.join(map(str, args.seeds))} repeats a seed; give each seed once")
    for _, out in folders:
        check_output_folder(out, "--out")
    for seed, out in folders:
        config = TrainConfig(
            out_dir=out,
            algo=args.algo,
            action=args.action,
            env_id=args.env,
            total_timesteps=args.total_timesteps,
            seed=seed,
            n_envs=args.n_envs,
            vec_env=args.vec_env,
            name=args.name or "",
            env_kwargs=_train_env_kwargs(args),
            hyperparameters=args.hyperparameters,
            headroom_low=args.headroom_low,
            headroom_high=args.headroom_high,
            headroom_planner=args.headroom_planner,
            headroom_max_payback_periods=args.headroom_max_payback,
            slo_price_per_request=args.slo_price,
            norm_obs=not args.no_norm_obs,
            norm_reward=not args.no_norm_reward,
            eval_freq=args.eval_freq,
            eval_episodes=args.eval_episodes,
            checkpoint_freq=args.checkpoint_freq,
            torch_threads=args.torch_threads,
        )
        try:
            result = train(config, progress_bar=not args.no_progress, require_checkpoint=args.resume)
        except KeyboardInterrupt as interrupt:  # the trainer's message says what the next run resumes from
            print(
                f"\n{interrupt or f'training interrupted; the same command resumes from {out}/checkpoints'}",
                file=sys.stderr,
            )
            return 130
        resumed = f" (resumed from step {result.start_timesteps})" if result.start_timesteps else ""
        rewards = result.validation_rewards
        validation = f"best validation reward {max(rewards):.4g}" if rewards else "no validation evaluation yet"
        print(
            f"trained {config.label} (seed {seed}) to {result.num_timesteps} steps{resumed}; {validation}\n"
            f"model {result.model_path}; best {result.best_model_path}; TensorBoard: tensorboard --logdir {out}/tb"
        )
    return 0
