"""The planners and the policies that play them: ``heuristics`` (GH, AGH), ``milp`` (the exact MILP and the
episode oracle) and ``runner`` (policies in the environment and the evaluation loop); ``result`` is what every
planner returns."""
