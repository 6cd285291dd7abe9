"""The heuristic planners: GH (``greedy``), AGH (``adaptive``) and the parts they share (the greedy context and
fleet bookkeeping, the per-type allocation, the three mechanisms, AGH's local search and rebuild moves, and the
active-set routing LP)."""
