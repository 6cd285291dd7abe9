"""servegym.envs: the world — catalog, performance model, instances, plan evaluation, routing, the Gymnasium env.

Importing this package registers the environment ids (idempotently); every id plays the world of MODEL.md §6
(cold starts, a router on ready capacity at realised speed, graded SLOs with an error penalty):

- ``servegym/Provisioning-v1``: Azure scenario, Azure train days, 15-minute periods (the default).
- ``servegym/ProvisioningPaper-v1``: the paper preset, synthetic demand σ = 0.05, 5-minute periods.
- ``servegym/ProvisioningStress-v1``: delay and error inflated 1.2× (unseen by the planners).
- ``servegym/ProvisioningStressSevere-v1``: delay and error inflated 1.5×.
- ``servegym/ProvisioningDrift-v1``: latent drift of GPU speed and model error (``servegym.envs.drift``).
- ``servegym/ProvisioningVolatile-v1``: synthetic demand σ = 0.05 and $5 per started replica.
- ``servegym/ProvisioningWeek-v1``: the seven consecutive Azure days Sunday to Saturday (evaluation only).

The v0 ids are no longer registered (docs/env.md says why); ``gymnasium.make`` names the v1 id instead.
"""

from gymnasium.envs.registration import register, registry

DEFAULT_ENV_ID = "servegym/Provisioning-v1"
"""The default setting: Azure scenario, Azure train days, 15-minute periods, cold starts."""

ENV_IDS = {
    DEFAULT_ENV_ID: {},
    "servegym/ProvisioningPaper-v1": {"scenario": "paper", "demand": "synthetic", "sigma": 0.05, "period_minutes": 5},
    "servegym/ProvisioningStress-v1": {"delay_inflation": 1.2, "error_inflation": 1.2},
    "servegym/ProvisioningStressSevere-v1": {"delay_inflation": 1.5, "error_inflation": 1.5},
    "servegym/ProvisioningDrift-v1": {"drift": "default"},
    "servegym/ProvisioningVolatile-v1": {"demand": "synthetic", "sigma": 0.05, "reconfiguration_cost": 5.0},
    "servegym/ProvisioningWeek-v1": {"demand": "azure-week", "horizon_hours": 168.0},
}

for _env_id, _kwargs in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="servegym.envs.provisioning:ProvisioningEnv", kwargs=_kwargs)
