"""The one family of user-facing errors: :class:`ServegymError` and the generic kinds every layer may raise.

A ``ServegymError`` means "the input is wrong", never "the code is wrong": its message names the argument, file,
row and field or JSON path at fault and what is allowed, so the user can fix the input without reading code. The
command line prints one as ``servegym COMMAND: error: MESSAGE`` and exits with status 2; any other exception is
a bug and keeps its traceback (exit status 1).

Every package's own user errors subclass it, and also the built-in type they were before (so ``except
ValueError`` in callers keeps working): ``TraceFormatError`` (traces), ``CatalogError``, ``InstanceError``,
``DemandSourceError``, ``PlanError``, ``EnvKeywordError`` (envs), ``OracleError``, ``MilpSolverError``,
``MilpModelError`` (baselines), ``TrainConfigError``, ``RunFolderError``, ``ScoreError``, ``LeaderboardError``
(agents), ``ConfigError``, ``StoreError``, ``RayConnectError`` (experiments). This module imports nothing, so
every layer may import it.
"""


class ServegymError(Exception):
    """A user-facing failure: bad arguments, files or settings; the message says where and what is allowed."""


class UsageError(ServegymError, ValueError):
    """A command-line argument or function argument is invalid; the message names it and the allowed values."""


class OutputPathError(ServegymError, ValueError):
    """An output path cannot be written: empty, a directory where a file is meant, a file where a folder is meant,
    or under a regular file."""


class MissingDependencyError(ServegymError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the package and the extra that provides it."""
