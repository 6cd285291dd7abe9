"""servegym.agents: learned policies — learning wrappers, SB3 training, the model-as-policy adapter, scoring.

Importing this package, ``config``, ``train``, ``adapter``, ``scoring`` or ``leaderboard`` needs neither torch
nor stable-baselines3: they are imported inside the functions that train, load or play a model (the ``rl``
extra). ``checkpoints`` imports stable-baselines3 and is only imported by those functions.
"""
