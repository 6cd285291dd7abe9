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
    non_negative_int,
    positive_int,
)
from servegym.errors import UsageError
from servegym.io import check_output_folder

NAME = "train"
HELP = "train an SB3 agent (needs the rl extra); resumes from the last checkpoint"
EXAMPLE = "servegym train --algo maskable_ppo --total-timesteps 200000 --seed 0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Algorithm, action space, environment, run length and the trainer's settings (defaults: ``TrainConfig``)."""
    from servegym.agents.config import ACTIONS, ALGORITHMS, HEADROOM_PLANNERS, TrainConfig

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
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="training seed (integer >= 0)")
    parser.add_argument("--n-envs", type=positive_int, default=defaults.n_envs, help="parallel environments")
    parser.add_argument("--out", help="run folder (default: runs/<name>-<env>-s<seed>)")
    parser.add_argument("--name", help="label in scores and leaderboards (default: <algo>-<action>)")
    parser.add_argument(
        "--hyperparameters",
        type=json_object,
        default={},
        metavar="JSON",
        help="JSON object overriding the algorithm's defaults (servegym.agents.config.DEFAULT_HYPERPARAMETERS); "
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
        "--headroom-planner", choices=HEADROOM_PLANNERS, default=defaults.headroom_planner, help="headroom planner"
    )
    parser.add_argument(
        "--headroom-max-payback",
        type=float,
        default=defaults.headroom_max_payback_periods,
        metavar="PERIODS",
        help="largest switching payback horizon the agent may choose, periods (0: no patience dimension)",
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


def run(args: argparse.Namespace) -> int:
    """Train (or resume) the run; status 130 when interrupted (nothing is written: the next run resumes from the
    latest checkpoint, which the message names)."""
    from servegym.agents.train import TrainConfig, require_rl, train

    require_rl()
    name = args.name or f"{args.algo}-{args.action}"
    out = args.out if args.out is not None else str(Path("runs") / f"{name}-{args.env.split('/')[-1]}-s{args.seed}")
    check_output_folder(out, "--out")
    config = TrainConfig(
        out_dir=out,
        algo=args.algo,
        action=args.action,
        env_id=args.env,
        total_timesteps=args.total_timesteps,
        seed=args.seed,
        n_envs=args.n_envs,
        name=args.name or "",
        env_kwargs=_train_env_kwargs(args),
        hyperparameters=args.hyperparameters,
        headroom_low=args.headroom_low,
        headroom_high=args.headroom_high,
        headroom_planner=args.headroom_planner,
        headroom_max_payback_periods=args.headroom_max_payback,
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
        f"trained {config.label} to {result.num_timesteps} steps{resumed}; {validation}\n"
        f"model {result.model_path}; best {result.best_model_path}; TensorBoard: tensorboard --logdir {out}/tb"
    )
    return 0
