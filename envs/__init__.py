"""servegym.envs: the world — catalog, performance model, instances, plan evaluation, routing, the Gymnasium env.

Importing this package registers the environment ids (idempotently); every id plays the world of MODEL.md §6
(cold starts, a router on ready capacity at realised speed, graded SLOs with an error penalty) on performance
model version 2 (docs/model.md), with forecast quantiles from a forecaster fitted on the demand history
(``servegym.envs.forecast``), and begins each episode from a warm fleet with the hour before it observed (v3):

- ``servegym/Provisioning-v3``: Azure scenario, Azure train days, 15-minute periods (the default).
- ``servegym/ProvisioningPaper-v3``: the paper preset, synthetic demand σ = 0.05, 5-minute periods.
- ``servegym/ProvisioningStress-v3``: delay and error inflated 1.2× (unseen by the planners).
- ``servegym/ProvisioningStressSevere-v3``: delay and error inflated 1.5×.
- ``servegym/ProvisioningDrift-v3``: latent drift of GPU speed and model error (``servegym.envs.drift``).
- ``servegym/ProvisioningVolatile-v3``: synthetic demand σ = 0.05 and $5 per started replica.
- ``servegym/ProvisioningWeek-v3``: the seven consecutive Azure days Sunday to Saturday (evaluation only).

The v0, v1 and v2 ids are no longer registered (docs/env.md, "Version history", says why); ``gymnasium.make``
names the v3 id instead.

``gymnasium.make`` of an id wraps the env in ``servegym.envs.wrappers.EpisodeStatistics``, so the last ``info`` of
an episode carries its cost parts and SLO rates (``EPISODE_INFO_KEYS``, for SB3's ``Monitor(info_keywords=...)``).

Gymnasium (1.x) finds ids only in processes that imported the package registering them. ``make_vec_env`` with
``SubprocVecEnv`` builds its envs in worker processes, so the script that calls it imports this package at top
level (``import servegym.envs``): ``fork`` workers inherit the registry and ``forkserver`` (SB3's default on Linux)
and ``spawn`` workers re-import the main script. Where the main module is not a file (a notebook,
``python -c``), pass ``vec_env_kwargs={"start_method": "fork"}`` or the id as ``"servegym.envs:<id>"``. RL Zoo:
``--gym-packages servegym.envs``.
"""

from gymnasium.envs.registration import WrapperSpec, register, registry

DEFAULT_ENV_ID = "servegym/Provisioning-v3"
"""The default setting: Azure scenario, Azure train days, 15-minute periods, cold starts after a warm first period."""

ENV_IDS = {
    DEFAULT_ENV_ID: {},
    "servegym/ProvisioningPaper-v3": {"scenario": "paper", "demand": "synthetic", "sigma": 0.05, "period_minutes": 5},
    "servegym/ProvisioningStress-v3": {"delay_inflation": 1.2, "error_inflation": 1.2},
    "servegym/ProvisioningStressSevere-v3": {"delay_inflation": 1.5, "error_inflation": 1.5},
    "servegym/ProvisioningDrift-v3": {"drift": "default"},
    "servegym/ProvisioningVolatile-v3": {"demand": "synthetic", "sigma": 0.05, "reconfiguration_cost": 5.0},
    "servegym/ProvisioningWeek-v3": {"demand": "azure-week", "horizon_hours": 168.0},
}

EPISODE_STATISTICS = WrapperSpec(
    name="EpisodeStatistics", entry_point="servegym.envs.wrappers:EpisodeStatistics", kwargs={}
)
"""The wrapper every id applies: episode totals in the last ``info``."""

for _env_id, _kwargs in ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="servegym.envs.provisioning:ProvisioningEnv",
            kwargs=_kwargs,
            additional_wrappers=(EPISODE_STATISTICS,),
        )
