"""Policies in the environment and the loop that plays them: the planner, hold and quantile policies
(``policies``), the tuned rule (``tuned_rule``), the evaluation loop over policies × episodes (``episodes``) and
its figures (``plots``)."""
