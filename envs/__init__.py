"""servegym.envs."""
