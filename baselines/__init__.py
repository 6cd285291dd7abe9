"""servegym.baselines."""
