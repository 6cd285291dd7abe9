"""Experiment configuration texts shared by the sweep and output-set tests."""

TINY = """
name = "tiny"

[scenarios.toy-1h]
scenario = "toy"
horizon_hours = 1.0

[sweep]
policies = ["gh-static", "random"]
scenarios = ["toy-1h"]
seeds = [0, 1]
"""
"""A 1-hour toy sweep: two policies × two seeds, four cells."""
