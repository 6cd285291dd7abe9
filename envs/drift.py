"""Latent drift: each GPU type's service speed and each model's error rate wander away from the catalog.

MODEL.md §6 "Latent drift". One episode's drift is a seeded, unobserved process per *factor* (a GPU type for
speed, a model for errors). The log of a factor is the sum of three parts (docs/drift.md has the formulas, the
evidence for every magnitude and a figure):

    log f(t) = L + X(t) + S(t)

- L ~ N(level_log_mean, level_log_sd²): a per-episode level (which machines, driver and engine build, or which
  production traffic the episode got), constant over the episode;
- X(t): an Ornstein–Uhlenbeck (continuous-time AR(1)) log noise with stationary sd ``noise_log_sd`` and
  mean-reversion time ``reversion_hours`` (temperature and clocks over the day, co-tenant load, query mix);
- S(t): the sum of the log sizes of the step changes active at t. Steps start as a Poisson process of
  ``steps_per_day`` per factor, last an exponential time of mean ``step_duration_hours``, and each has a log
  size ~ N(step_log_mean, step_log_sd²) (a noisy neighbour, a throttled node, a driver or engine regression;
  for errors a serving-stack accuracy bug or a shift to harder traffic). Steps may overlap; their logs add.

Every part starts in its stationary state (X(0) ~ N(0, noise_log_sd²); the steps already active when the episode
begins are Poisson with mean steps_per_day · step_duration_hours / 24, with exponential remaining durations), so
the marginal of log f(t) is the same at every t: an exact Poisson mixture of normals (:func:`margin_quantile`).
Period t takes the process's value at its midpoint (t + ½)·Δt, so that marginal does not depend on the period
length. Factors are clipped to [FACTOR_FLOOR, FACTOR_CEILING].

Directions:

- ``Drift.slowdown`` (T, G) multiplies service time on GPU type g: realised speed = catalog speed / slowdown,
  so 1.2 is 20 % more time per request (capacity ÷ 1.2, delay × 1.2), exactly where the stress test's delay
  inflation κ_D enters envs/outcome.py, but per period and per GPU type. Values < 1 are faster than the catalog.
- ``Drift.error_factor`` (T, J) multiplies the error rate of every route of model j, like κ_E, clipped so that
  an error rate stays ≤ 1 (:func:`realised_error_rate`).

Planners plan on the catalog (factor 1); a policy can infer drift only from realised utilisation, delays and SLO
outcomes; a robust planner can plan with the margin ``margin_quantile(process, q)``.

Randomness: :func:`sample_drift` takes exactly two integers from the caller's generator (child seeds for the speed
and the error family) whatever the settings and shapes, so switching drift on or off, or changing the number of
GPU types or models, never shifts the caller's other random streams; the speed paths do not depend on the number
of models, nor the error paths on the number of GPU types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Real

import numpy as np

from servegym import numerics

HOURS_PER_DAY = 24.0

FACTOR_FLOOR = 0.5
"""Smallest factor: at most twice as fast as the catalog, or half its error rate. Log-normal tails never reach it
with the default settings; it only keeps extreme user settings physical."""
FACTOR_CEILING = 4.0
"""Largest factor: a quarter of the catalog speed, the worst sustained throttling reported for a cloud GPU
(clocks held at ~25 % by poor cooling; matt.sh "Cloud GPUs Throttled to 25% Due to Poor Cooling"); keeps every
factor finite."""

# (low, high, low inclusive) per field; every field must also be a finite real number.
_FIELD_RANGES: dict[str, tuple[float, float, bool]] = {
    "level_log_mean": (-0.5, 0.5, True),
    "level_log_sd": (0.0, 0.5, True),
    "noise_log_sd": (0.0, 0.5, True),
    "reversion_hours": (0.1, 1000.0, True),
    "steps_per_day": (0.0, 48.0, True),
    "step_log_mean": (-1.0, 1.0, True),
    "step_log_sd": (0.0, 0.5, True),
    "step_duration_hours": (0.0, 1000.0, False),
}
_FIELD_UNITS = {
    "level_log_mean": "log factor",
    "level_log_sd": "log factor",
    "noise_log_sd": "log factor",
    "reversion_hours": "hours",
    "steps_per_day": "steps per factor per day",
    "step_log_mean": "log factor",
    "step_log_sd": "log factor",
    "step_duration_hours": "hours",
}
_AR1_MAX_EXPONENT = 50.0
"""Block length of the vectorised AR(1) recursion: within a block the weights a^-k stay below e^50."""


@dataclass(frozen=True)
class DriftProcess:
    """Parameters of one factor family (GPU speed or model error); every factor of the family draws independently.

    All sizes are natural logs of the multiplier (0.1 ≈ +10.5 %). Allowed ranges are checked on construction.

    Attributes:
        level_log_mean: Mean of the per-episode log level L, in [-0.5, 0.5]. Non-zero when the catalog is biased
            (benchmarks are measured on well-tuned machines and on possibly contaminated test sets).
        level_log_sd: Standard deviation of L across episodes and factors, in [0, 0.5].
        noise_log_sd: Stationary standard deviation of the Ornstein–Uhlenbeck log noise X, in [0, 0.5].
        reversion_hours: Mean-reversion time constant τ of X in hours, in [0.1, 1000]: the autocorrelation of X
            at lag h hours is exp(-h/τ). Irrelevant when noise_log_sd is 0.
        steps_per_day: Poisson rate of step changes per factor per day, in [0, 48].
        step_log_mean: Mean log size of one step, in [-1, 1] (> 0: slower, or more errors).
        step_log_sd: Standard deviation of a step's log size, in [0, 0.5].
        step_duration_hours: Mean of the exponential duration of a step before it clears, hours, > 0 and ≤ 1000.
            Irrelevant when steps_per_day is 0.
    """

    level_log_mean: float
    level_log_sd: float
    noise_log_sd: float
    reversion_hours: float
    steps_per_day: float
    step_log_mean: float
    step_log_sd: float
    step_duration_hours: float

    def __post_init__(self) -> None:
        for field in fields(self):
            name = field.name
            value = getattr(self, name)
            low, high, low_inclusive = _FIELD_RANGES[name]
            interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"DriftProcess.{name} must be a real number in {interval}, got {value!r}")
            value = float(value)
            above_low = value >= low if low_inclusive else value > low
            if not (math.isfinite(value) and above_low and value <= high):
                raise ValueError(
                    f"DriftProcess.{name} = {value!r} is outside its allowed range {interval} ({_FIELD_UNITS[name]})"
                )

    @property
    def mean_active_steps(self) -> float:
        """Mean number of steps active at any instant (M/M/∞ occupancy): steps_per_day · duration / 24."""
        return self.steps_per_day * self.step_duration_hours / HOURS_PER_DAY

    @property
    def is_null(self) -> bool:
        """True when every factor of the family is identically 1 (no level, noise or steps)."""
        return (
            self.level_log_mean == 0.0
            and self.level_log_sd == 0.0
            and self.noise_log_sd == 0.0
            and (self.steps_per_day == 0.0)
        )

    def stationary_log_sd(self) -> float:
        """Standard deviation of the stationary marginal of log f: √(σ_L² + σ_X² + m·(μ_s² + σ_s²)), m active steps."""
        step_second_moment = self.step_log_mean**2 + self.step_log_sd**2
        return math.sqrt(self.level_log_sd**2 + self.noise_log_sd**2 + self.mean_active_steps * step_second_moment)


NO_PROCESS = DriftProcess(
    level_log_mean=0.0,
    level_log_sd=0.0,
    noise_log_sd=0.0,
    reversion_hours=1.0,
    steps_per_day=0.0,
    step_log_mean=0.0,
    step_log_sd=0.0,
    step_duration_hours=1.0,
)
"""A family without drift: every magnitude 0 (the two time constants are placeholders with no effect)."""


@dataclass(frozen=True)
class DriftSettings:
    """The drift of one env setting.

    Attributes:
        speed: Per GPU type. The factor is a service-time *slowdown*: realised service speed = catalog speed /
            slowdown (1 = catalog, 1.2 = 20 % more time per request, 0.95 = 5 % faster); it scales delay and
            replica occupancy like the stress test's κ_D.
        error: Per model. Realised error rate = catalog error rate × factor, clipped at 1 (like κ_E).
    """

    speed: DriftProcess
    error: DriftProcess

    def __post_init__(self) -> None:
        for name in ("speed", "error"):
            if not isinstance(getattr(self, name), DriftProcess):
                raise ValueError(f"DriftSettings.{name} must be a DriftProcess, got {getattr(self, name)!r}")

    @property
    def is_null(self) -> bool:
        """True when every factor is identically 1."""
        return self.speed.is_null and self.error.is_null


DEFAULT_SPEED_DRIFT = DriftProcess(
    # Catalog speeds come from vLLM/TensorRT-LLM measurements on well-cooled, tuned machines; a rented pool of
    # the same SKU runs a little slower on average and varies between episodes. Sinha et al. (SC'22, arXiv
    # 2208.11035v3): 8 % average (max 22 %) performance variation across GPUs of one SKU in five HPC clusters,
    # outliers 1.5x slower than the median GPU. A pool of several replicas averages GPUs, so its spread is
    # smaller than a single GPU's: median +2 %, sd 4 % (95 % of episodes between 6 % faster and 10 % slower).
    level_log_mean=0.02,
    level_log_sd=0.04,
    # Meta's Llama 3 405B run saw a diurnal 1-2 % throughput swing from mid-day temperatures acting on GPU
    # voltage/frequency scaling (The Llama 3 Herd of Models, 2024); co-tenant load on host CPU, PCIe and
    # network adds to it. 2 % sd, correlated over a few hours (τ = 3 h: a modelling choice for an hours-scale
    # weather/load cycle).
    noise_log_sd=0.02,
    reversion_hours=3.0,
    # Steps: a noisy neighbour, a throttled node (nvidia-smi "HW Slowdown"), an engine or driver regression
    # until rolled back. Measured slowdowns: vLLM v0.4.0 → v0.4.1 throughput 20.13 → 17.67 requests/s (×1.14
    # service time, vllm-project/vllm#4210); ~10 % on GB200 after vLLM 0.17 → 0.18 (verl-project/verl#5964);
    # tails: NVIDIA driver 536 under WSL2 1.03 → 0.74 requests/s (×1.39, vllm-project/vllm#2057), a GB10 flipping
    # between 63 and 94 ms per decode step (×1.49, tonyd2wild/DeepSeek-V4.1-Flash-vLLM-DGX-Spark#1), Sinha's 1.5x
    # outliers. Log size N(0.13, 0.06²): median ×1.14,
    # 95 % of steps ×1.01-1.28; two overlapping steps reach the tails. Frequency and duration are modelling
    # choices: one step per GPU type every two days, lasting 4 h on average (detection and rollback or drain), so
    # a type spends ~8 % of the time in a step and an 8-type fleet sees ~4 steps a day.
    steps_per_day=0.5,
    step_log_mean=0.13,
    step_log_sd=0.06,
    step_duration_hours=4.0,
)
"""GPU speed drift of the Drift env (docs/drift.md gives the evidence in full)."""

DEFAULT_ERROR_DRIFT = DriftProcess(
    # Catalog error rates are 1 − published benchmark accuracy; production traffic is not the benchmark.
    # Zhang et al. 2024 (GSM1k, arXiv 2405.00332): on fresh problems matched to GSM8K, accuracy drops of up to
    # 8-13 points for some model families, little for frontier models; LiveCodeBench (Jain et al. 2024) shows
    # drops on problems released after a model's cutoff. A systematic gap of that kind is published, so a planner
    # can know it: it belongs in the catalog, not in the latent drift. What no planner can know is how far an
    # episode's traffic sits from the benchmark: median ×1 (no bias), sd 5 % across episodes and models (95 %
    # between ×0.91 and ×1.10, about ±1-3 accuracy points at the catalog's errors). Modelling choice within the
    # GSM1k gaps; with the error SLOs of the shipped scenarios at the best models' errors, larger levels make the
    # error penalty of every policy alike swamp everything a policy can change.
    level_log_mean=0.0,
    level_log_sd=0.05,
    # The query mix inside a type moves over the day (users, tasks, languages): 3 % sd, τ = 2 h (modelling
    # choice; weights are fixed, so this is traffic, not the model).
    noise_log_sd=0.03,
    reversion_hours=2.0,
    # Steps: a serving-stack accuracy bug or a shift to harder traffic (a new client). Reported magnitudes are
    # large: GSM8K ~5 points below 94.5 % on a nightly vLLM build (error ×~1.9, vllm-project/vllm#50435), an 11 %
    # accuracy drop for Llama 3.2 11B (vllm-project/vllm#14477), GPT-4's prime-number accuracy 97.6 % → 2.4 %
    # between two API versions (Chen, Zaharia, Zou 2023). Most shifts are milder; log size N(0.20, 0.10²): median
    # ×1.22, 95 % ×1.00-1.49. One step per model every five days, lasting 6 h on average (modelling choices).
    steps_per_day=0.2,
    step_log_mean=0.20,
    step_log_sd=0.10,
    step_duration_hours=6.0,
)
"""Model error drift of the Drift env (docs/drift.md gives the evidence in full)."""

DEFAULT_DRIFT = DriftSettings(speed=DEFAULT_SPEED_DRIFT, error=DEFAULT_ERROR_DRIFT)
"""The Drift env's setting."""
NO_DRIFT = DriftSettings(speed=NO_PROCESS, error=NO_PROCESS)
"""No drift: every factor is exactly 1.0."""


@dataclass(frozen=True)
class DriftComponents:
    """One family's realisation in parts (diagnostics and tests; the env needs only the factors).

    Attributes:
        level: (F,) per-episode log level L per factor.
        noise: (T, F) Ornstein–Uhlenbeck log noise X at the period midpoints.
        steps: (T, F) summed log size of the steps active at the period midpoints.
        active_steps: (T, F) number of steps active at the period midpoints.
        step_onsets: (F,) number of steps that began during the episode (excludes those already active at 0).
        factor: (T, F) the multiplier clip(exp(level + noise + steps), FACTOR_FLOOR, FACTOR_CEILING).
    """

    level: np.ndarray
    noise: np.ndarray
    steps: np.ndarray
    active_steps: np.ndarray
    step_onsets: np.ndarray
    factor: np.ndarray


@dataclass(frozen=True)
class Drift:
    """One episode's drift realisation (read-only arrays).

    Attributes:
        slowdown: (T, G) service-time multiplier per period and GPU type (1 = catalog; 1.2 = 20 % slower;
            realised speed = catalog speed / slowdown).
        error_factor: (T, J) error-rate multiplier per period and model (realised error = min(1, e × factor)).
        speed: The GPU-speed family in parts.
        error: The model-error family in parts.
        period_minutes: Period length Δt the paths were sampled at.
    """

    slowdown: np.ndarray
    error_factor: np.ndarray
    speed: DriftComponents
    error: DriftComponents
    period_minutes: int

    @property
    def num_periods(self) -> int:
        return int(self.slowdown.shape[0])


def realised_error_rate(error_rate: np.ndarray | float, factor: np.ndarray | float) -> np.ndarray:
    """Catalog error rate × drift factor, clipped to [0, 1] (broadcasting)."""
    return np.clip(np.asarray(error_rate, dtype=float) * np.asarray(factor, dtype=float), 0.0, 1.0)


def sample_drift(
    settings: DriftSettings,
    rng: np.random.Generator,
    *,
    num_periods: int,
    period_minutes: int,
    num_gpus: int,
    num_models: int,
) -> Drift:
    """Draw one episode's drift (deterministic per generator state; vectorised numpy).

    Args:
        settings: The two families' parameters.
        rng: The caller's generator; exactly two integers are taken from it (child seeds), whatever the settings.
        num_periods: T ≥ 1 periods.
        period_minutes: Period length Δt in minutes, ≥ 1.
        num_gpus: G ≥ 0 GPU types (columns of ``slowdown``).
        num_models: J ≥ 0 models (columns of ``error_factor``).
    """
    if not isinstance(settings, DriftSettings):
        raise ValueError(f"settings must be a DriftSettings, got {settings!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {rng!r}")
    for name, value, low in (
        ("num_periods", num_periods, 1),
        ("period_minutes", period_minutes, 1),
        ("num_gpus", num_gpus, 0),
        ("num_models", num_models, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    speed_seed, error_seed = (int(s) for s in rng.integers(0, 2**63 - 1, size=2, dtype=np.int64))
    period_hours = period_minutes / 60.0
    speed = _sample_family(settings.speed, np.random.default_rng(speed_seed), int(num_periods), period_hours, num_gpus)
    error = _sample_family(
        settings.error, np.random.default_rng(error_seed), int(num_periods), period_hours, num_models
    )
    return Drift(
        slowdown=speed.factor,
        error_factor=error.factor,
        speed=speed,
        error=error,
        period_minutes=int(period_minutes),
    )


def _sample_family(
    process: DriftProcess, rng: np.random.Generator, num_periods: int, period_hours: float, num_factors: int
) -> DriftComponents:
    T, F = num_periods, int(num_factors)
    level = process.level_log_mean + process.level_log_sd * rng.standard_normal(F)
    noise = _ornstein_uhlenbeck(
        rng.standard_normal((T, F)), period_hours / process.reversion_hours, process.noise_log_sd
    )
    steps, active, onsets = _steps(process, rng, T, period_hours, F)
    factor = _factor(level[None, :] + noise + steps)
    return DriftComponents(
        level=_read_only(level),
        noise=_read_only(noise),
        steps=_read_only(steps),
        active_steps=_read_only(active),
        step_onsets=_read_only(onsets),
        factor=_read_only(factor),
    )


def _ornstein_uhlenbeck(shocks: np.ndarray, step_over_tau: float, sd: float) -> np.ndarray:
    """Stationary OU sampled every Δt: x_0 = sd·z_0, x_t = a·x_{t-1} + sd·√(1-a²)·z_t, a = exp(-Δt/τ).

    Vectorised as x_t = a^t Σ_{s≤t} a^-s η_s inside blocks short enough for a^-s to stay below e^50, carrying
    the last state across blocks (rounding error stays ~ machine ε / (1 - a)).
    """
    T, F = shocks.shape
    if sd == 0.0 or T == 0 or F == 0:
        return np.zeros((T, F))
    innovations = sd * math.sqrt(-math.expm1(-2.0 * step_over_tau)) * shocks
    innovations[0] = sd * shocks[0]
    block = max(1, int(_AR1_MAX_EXPONENT / step_over_tau))
    out = np.empty((T, F))
    carry = np.zeros(F)
    for start in range(0, T, block):
        segment = innovations[start : start + block]
        k = np.arange(segment.shape[0], dtype=float)
        growth = numerics.exp(k * step_over_tau)[:, None]  # a^-k
        local = np.cumsum(segment * growth, axis=0) / growth  # Σ_{s≤k} a^(k-s) η_s within the block
        out[start : start + segment.shape[0]] = local + numerics.exp(-(k + 1.0) * step_over_tau)[:, None] * carry
        carry = out[start + segment.shape[0] - 1]
    return out


def _steps(
    process: DriftProcess, rng: np.random.Generator, T: int, period_hours: float, F: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of active step sizes and active counts at the period midpoints, and onsets per factor."""
    horizon = T * period_hours
    already_active = rng.poisson(process.mean_active_steps, F)  # stationary M/M/∞ occupancy at time 0
    onsets = rng.poisson(process.steps_per_day / HOURS_PER_DAY * horizon, F)
    n_prior, n_new = int(already_active.sum()), int(onsets.sum())
    owner = np.concatenate([np.repeat(np.arange(F), already_active), np.repeat(np.arange(F), onsets)])
    start = np.concatenate([np.full(n_prior, -np.inf), rng.uniform(0.0, horizon, n_new)])
    duration = rng.exponential(process.step_duration_hours, n_prior + n_new)  # memoryless: residual = full
    end = np.where(np.isinf(start), duration, start + duration)
    size = process.step_log_mean + process.step_log_sd * rng.standard_normal(n_prior + n_new)
    # Step n covers the periods whose midpoint (t + 1/2)·Δt lies in [start, end): t in [first, stop).
    first = np.clip(np.ceil(start / period_hours - 0.5), 0, T).astype(np.int64)
    stop = np.clip(np.ceil(end / period_hours - 0.5), 0, T).astype(np.int64)
    # Difference arrays over the (T + 1, F) grid, accumulated in input order (np.bincount), then summed over t.
    cells = (T + 1) * F
    opens, closes = first * F + owner, stop * F + owner
    active = np.cumsum(
        (np.bincount(opens, minlength=cells) - np.bincount(closes, minlength=cells)).reshape(T + 1, F)[:T], axis=0
    )
    steps = np.cumsum(
        (np.bincount(opens, size, minlength=cells) - np.bincount(closes, size, minlength=cells)).reshape(T + 1, F)[:T],
        axis=0,
    )
    steps = np.where(active > 0, steps, 0.0)  # exact zeros where no step is active
    return steps, active, onsets.astype(np.int64)


def _factor(log_factor: np.ndarray) -> np.ndarray:
    """clip(exp(log_factor), FACTOR_FLOOR, FACTOR_CEILING) without overflow (clip in log space first)."""
    bounded = np.clip(log_factor, math.log(FACTOR_FLOOR), math.log(FACTOR_CEILING))
    return np.clip(numerics.exp(bounded), FACTOR_FLOOR, FACTOR_CEILING)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def margin_quantile(process: DriftProcess, quantile: float) -> float:
    """The multiplier at ``quantile`` of the family's stationary marginal distribution (exact).

    Given k active steps, log f = L + X + S is normal with mean μ_L + k·μ_s and variance σ_L² + σ_X² + k·σ_s²;
    k is Poisson with mean m = steps_per_day · step_duration_hours / 24. So the marginal CDF is the Poisson mixture
    F(x) = Σ_k Pois(k; m) Φ((x - μ_k)/σ_k), solved for F(x) = quantile by bisection to machine precision (the
    Poisson sum is cut where its tail is below 1e-15), then mapped through the same clip as the samples. The
    marginal is over episodes and instants: it includes the per-episode level, which a planner does not know.
    Monotone in ``quantile``; exactly 1.0 for a null process.

    Args:
        process: One family's parameters.
        quantile: In (0, 1), e.g. 0.9 for a margin that covers 90 % of periods.
    """
    if not isinstance(process, DriftProcess):
        raise ValueError(f"process must be a DriftProcess, got {process!r}")
    if isinstance(quantile, bool) or not isinstance(quantile, Real) or not 0.0 < float(quantile) < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    q = float(quantile)
    weights, means, sds = _poisson_mixture(process)
    if not np.any(sds > 0.0):
        # Point masses (a null process, or steps of a fixed size without noise): the smallest atom reaching q.
        order = np.argsort(means, kind="stable")
        cumulative = np.cumsum(weights[order])
        x = float(means[order][min(int(np.searchsorted(cumulative, q - 1e-15)), len(order) - 1)])
        return _clip_factor(x)
    low = float(np.min(means - 40.0 * sds)) - 1.0
    high = float(np.max(means + 40.0 * sds)) + 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        if _mixture_cdf(mid, weights, means, sds) >= q:
            high = mid
        else:
            low = mid
    return _clip_factor(high)


def _poisson_mixture(process: DriftProcess) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = process.mean_active_steps
    base_variance = process.level_log_sd**2 + process.noise_log_sd**2
    weights = [math.exp(-m)]
    while 1.0 - sum(weights) > 1e-15 and len(weights) < 1000:
        k = len(weights)
        weights.append(weights[-1] * m / k)
    k = np.arange(len(weights), dtype=float)
    means = process.level_log_mean + k * process.step_log_mean
    sds = np.sqrt(base_variance + k * process.step_log_sd**2)
    return np.asarray(weights), means, sds


def _mixture_cdf(x: float, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> float:
    total = 0.0
    for w, mu, sd in zip(weights, means, sds, strict=True):
        if sd > 0.0:
            total += w * 0.5 * math.erfc(-(x - mu) / (sd * math.sqrt(2.0)))
        elif x >= mu:
            total += w
    return total


def _clip_factor(log_factor: float) -> float:
    return float(_factor(np.array(log_factor)))
