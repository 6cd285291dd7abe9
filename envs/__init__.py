"""servegym.envs: the world — catalog, performance model, instances, plan evaluation, routing, the Gymnasium env.

Importing this package registers the environment ids (idempotently):

- ``servegym/Provisioning-v0``: Azure scenario, Azure train days, 15-minute periods, load-time reconfiguration.
- ``servegym/ProvisioningPaper-v0``: the paper preset, synthetic demand σ = 0.05, 5-minute periods.
- ``servegym/ProvisioningStress-v0``: Azure scenario with delay and error inflated 1.5×.
- ``servegym/ProvisioningVolatile-v0``: Azure scenario, synthetic demand σ = 0.05, $5 per started replica.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = {
    "servegym/Provisioning-v0": {},
    "servegym/ProvisioningPaper-v0": {"scenario": "paper", "demand": "synthetic", "sigma": 0.05, "period_minutes": 5},
    "servegym/ProvisioningStress-v0": {"delay_inflation": 1.5, "error_inflation": 1.5},
    "servegym/ProvisioningVolatile-v0": {"demand": "synthetic", "sigma": 0.05, "reconfiguration_cost": 5.0},
}

for _env_id, _kwargs in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="servegym.envs.provisioning:ProvisioningEnv", kwargs=_kwargs)
