"""servegym.agents."""
