"""The exact planners: the single-period MILP (``model`` builds it, ``backends`` runs it on HiGHS, SCIP, CBC or
CP-SAT, ``solver`` is the planner entry point with AGH's warm start and the dominance filter of ``dominance``)
and the perfect-foresight episode oracle (``oracle``)."""
