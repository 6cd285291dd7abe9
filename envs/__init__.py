"""servegym.envs: the world — catalog, performance model, instances, plan evaluation, routing, the Gymnasium env.

Importing this package registers the environment ids (idempotently); every id plays the world of MODEL.md §6
(cold starts, a router on ready capacity at realised speed, graded SLOs with an error penalty) with the v2
observation (forecast quantiles from a forecaster fitted on the demand history, ``servegym.envs.forecast``):

- ``servegym/Provisioning-v2``: Azure scenario, Azure train days, 15-minute periods (the default).
- ``servegym/ProvisioningPaper-v2``: the paper preset, synthetic demand σ = 0.05, 5-minute periods.
- ``servegym/ProvisioningStress-v2``: delay and error inflated 1.2× (unseen by the planners).
- ``servegym/ProvisioningStressSevere-v2``: delay and error inflated 1.5×.
- ``servegym/ProvisioningDrift-v2``: latent drift of GPU speed and model error (``servegym.envs.drift``).
- ``servegym/ProvisioningVolatile-v2``: synthetic demand σ = 0.05 and $5 per started replica.
- ``servegym/ProvisioningWeek-v2``: the seven consecutive Azure days Sunday to Saturday (evaluation only).

The v0 and v1 ids are no longer registered (docs/env.md, "Version history", says why); ``gymnasium.make`` names the
v2 id instead.
"""

from gymnasium.envs.registration import register, registry

DEFAULT_ENV_ID = "servegym/Provisioning-v2"
"""The default setting: Azure scenario, Azure train days, 15-minute periods, cold starts."""

ENV_IDS = {
    DEFAULT_ENV_ID: {},
    "servegym/ProvisioningPaper-v2": {"scenario": "paper", "demand": "synthetic", "sigma": 0.05, "period_minutes": 5},
    "servegym/ProvisioningStress-v2": {"delay_inflation": 1.2, "error_inflation": 1.2},
    "servegym/ProvisioningStressSevere-v2": {"delay_inflation": 1.5, "error_inflation": 1.5},
    "servegym/ProvisioningDrift-v2": {"drift": "default"},
    "servegym/ProvisioningVolatile-v2": {"demand": "synthetic", "sigma": 0.05, "reconfiguration_cost": 5.0},
    "servegym/ProvisioningWeek-v2": {"demand": "azure-week", "horizon_hours": 168.0},
}

for _env_id, _kwargs in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="servegym.envs.provisioning:ProvisioningEnv", kwargs=_kwargs)
