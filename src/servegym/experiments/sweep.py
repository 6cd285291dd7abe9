"""Run every cell of a configuration on a local process pool or on Ray, writing each result as it arrives.

Both backends call the same worker, :func:`servegym.experiments.cells.run_cell`, and only the driver writes to
the store, so the backends give identical records and a store on the driver's disk works with a remote cluster.
Finished cells are skipped, corrupt ones deleted and re-run: an interrupted sweep resumes where it stopped.

Killed jobs leave nothing running: local workers call :func:`servegym.processes.die_with_parent`, so a SIGKILL of
the driver ends them too. Connecting to a Ray cluster gives up after :data:`RAY_CONNECT_TIMEOUT_S` seconds with a
:class:`RayConnectError` (Ray itself retries forever).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from servegym.envs.settings import scenario_instance
from servegym.errors import MissingDependencyError, OutputPathError, ServegymError, UsageError
from servegym.experiments.cells import Cell, plan_cells, run_cell
from servegym.experiments.config import ConfigError, ExperimentConfig
from servegym.experiments.store import CellCheck, CellState, MergeReport, ResultStore
from servegym.processes import die_with_parent

BACKENDS = ("local", "ray")
LOOPBACK_ONLY_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, a local Ray cluster listens on 127.0.0.1 only."""
Completion = tuple[Cell, list[dict[str, Any]] | None, str | None]
"""A finished task: the cell, its records (None on failure) and the error message (None on success)."""
FORKSERVER_GUARD = "servegym.experiments.forkserver_guard"
"""Module the local backend's fork server imports first, so that it dies with the driver."""
RAY_CONNECT_TIMEOUT_S = 30.0
"""Longest wait, seconds, for the Ray cluster at ``--address`` to answer before the sweep fails."""
STORES_DIR = Path("results") / "sweeps"
"""Parent of the default results stores, ``results/sweeps/<config name>``, under the working directory."""


class RayConnectError(ServegymError, ConnectionError):
    """The Ray cluster at the given address does not answer (or refuses the connection) within the timeout."""


@dataclass(frozen=True)
class CellFailure:
    """A cell whose worker raised; it is not written and is retried by the next run."""

    key: str
    label: str
    error: str


@dataclass(frozen=True)
class SweepOutcome:
    """What one invocation of :func:`run_sweep` did.

    Attributes:
        keys: Keys of every cell of the configuration.
        already_finished: Cells found finished in the store and skipped.
        executed: Cells computed and written by this run.
        rerun_corrupt: Cells found corrupt, deleted and queued again.
        failures: Cells whose worker raised.
        not_started: Cells left for a later run by ``max_cells``.
        wall_s: Wall time of this run, seconds.
        merge: The merge written at the end.
    """

    keys: tuple[str, ...]
    already_finished: int
    executed: int
    rerun_corrupt: tuple[CellCheck, ...]
    failures: tuple[CellFailure, ...]
    not_started: int
    wall_s: float
    merge: MergeReport


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _process_context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported the worker module (fast, thread-safe starts), else spawn (Windows).

    The fork server first imports :mod:`servegym.experiments.forkserver_guard`, which makes it die with the driver
    (and its workers with it). It is started by the thread that first submits a cell, which must live as long
    as the sweep: the main thread of ``servegym sweep``.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([FORKSERVER_GUARD, run_cell.__module__])
    return context


def _run_local(cells: Sequence[Cell], store: ResultStore, workers: int) -> Iterator[Completion]:
    """Cells as tasks of a process pool of ``workers`` processes, yielded as they complete."""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=_process_context(), initializer=die_with_parent, initargs=(os.getpid(),)
    )
    try:
        pending: dict[Future, Cell] = {pool.submit(run_cell, cell, store.work_dir(cell.key)): cell for cell in cells}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                cell = pending.pop(future)
                error = future.exception()
                yield (cell, None, _error_text(error)) if error else (cell, future.result(), None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_address(address: str) -> tuple[str, int] | None:
    """The host and port of a ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for ``auto``.

    Raises:
        UsageError: Any other form.
    """
    if address == "auto":
        return None
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not (separator and host and port.isdigit() and 0 < int(port) < 65536):
        raise UsageError(f"--address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def _connect_ray(ray: Any, address: str, timeout_s: float) -> None:
    """``ray.init(address)``, but failing with :class:`RayConnectError` when the cluster does not answer in time.

    A TCP connection to the address comes first (a refused or unanswered port fails here); then ``ray.init`` runs
    in a daemon thread and is given what is left of ``timeout_s``, because Ray retries an unanswered GCS forever.
    """
    deadline = time.monotonic() + timeout_s
    endpoint = _check_address(address)
    if endpoint is not None:
        try:
            with socket.create_connection(endpoint, timeout=timeout_s):
                pass
        except OSError as error:
            raise RayConnectError(
                f"--address {address}: no Ray cluster answers there ({error}); start one (ray start --head) or fix "
                "the address"
            ) from None
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            ray.init(address=address, include_dashboard=False)
        except BaseException as error:  # handed to the waiting thread, which re-raises it
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=connect, name="servegym-ray-connect", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0))
    if not outcome:
        raise RayConnectError(
            f"--address {address}: the Ray cluster did not answer within {timeout_s:g} s; check that it is running "
            "(ray status) and that this host may reach it"
        )
    if isinstance(outcome[0], ConnectionError):
        raise RayConnectError(f"--address {address}: {outcome[0]}") from None
    if outcome[0] is not None:
        raise outcome[0]


def _run_ray(
    cells: Sequence[Cell], store: ResultStore, workers: int | None, address: str | None
) -> Iterator[Completion]:
    """Cells as Ray tasks (one CPU each) on the cluster at ``address``, or on a new local one when None.

    A new local cluster binds to loopback only: Ray uses the host's routable address on Linux unless
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before it is imported, which makes it use 127.0.0.1.
    """
    if address is None:
        os.environ.setdefault(LOOPBACK_ONLY_VARIABLE, "0")
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError(
            f"the ray backend needs the ray extra: pip install 'servegym[ray]' ({error})"
        ) from None

    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False)
        else:
            _connect_ray(ray, address, RAY_CONNECT_TIMEOUT_S)
    task = ray.remote(num_cpus=1)(run_cell)
    pending: dict[Any, Cell] = {}
    try:
        pending = {task.remote(cell, store.work_dir(cell.key)): cell for cell in cells}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ref)
            try:
                completion: Completion = (cell, ray.get(ref), None)
            except ray.exceptions.RayError as error:
                completion = (cell, None, _error_text(error))
            yield completion
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _check_instances(config: ExperimentConfig, cells: Sequence[Cell]) -> None:
    """Build every overridden instance once in the driver, so a bad catalog subset fails before any cell runs."""
    for scenario in dict.fromkeys(cell.scenario for cell in cells):
        if scenario.overrides_instance:
            try:
                scenario_instance(scenario)
            except ConfigError as error:
                raise ConfigError(f"{config.path}: {error}") from None


def run_sweep(
    config: ExperimentConfig,
    store: ResultStore,
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    max_cells: int | None = None,
    progress: bool = True,
) -> SweepOutcome:
    """Run the configuration's cells that the store does not hold finished, then merge the store.

    Args:
        config: A loaded configuration with a ``[sweep]`` section or ``[[training]]`` runs.
        store: Where finished cells are written.
        backend: ``local`` (process pool) or ``ray``.
        workers: Local processes, or CPUs of a new local Ray cluster (default: ``os.cpu_count()``; ignored
            when connecting to an existing Ray cluster, which schedules on all of its CPUs).
        address: Ray cluster address (``ray://host:10001``, ``host:6379`` or ``auto``); None starts a local one.
        max_cells: Compute at most this many cells in this run (the rest stay for a later run).
        progress: Show a progress bar.

    Raises:
        UsageError: Unknown backend, an address with the local backend or not of a documented form, or a
            configuration without cells.
        RayConnectError: The Ray cluster at ``address`` does not answer within :data:`RAY_CONNECT_TIMEOUT_S`.
    """
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r} not one of {list(BACKENDS)}")
    if address is not None and backend != "ray":
        raise UsageError("--address applies to the ray backend only")
    if address is not None:
        _check_address(address)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError(f"workers {workers!r} outside allowed range: integers in [1, inf)")
    start = time.perf_counter()
    cells = list({cell.key: cell for cell in plan_cells(config)}.values())
    if not cells:
        raise UsageError(f"{config.path}: defines no [sweep] section and no [[training]] runs; nothing to run")
    checks = [store.check(cell.key) for cell in cells]
    corrupt = tuple(check for check in checks if check.state == CellState.CORRUPT)
    for check in corrupt:
        store.discard(check.key)
    todo = [cell for cell, check in zip(cells, checks, strict=True) if check.state != CellState.FINISHED]
    run = todo if max_cells is None else todo[:max_cells]
    _check_instances(config, run)
    finished = len(cells) - len(todo)
    executed, failures = 0, []
    bar = tqdm(total=len(cells), initial=finished, disable=not progress, desc=f"sweep {config.name}", unit="cell")
    if corrupt:
        reasons = "; ".join(f"{check.key[:12]} {check.reason}" for check in corrupt)
        bar.write(f"re-running {len(corrupt)} corrupt cell(s): {reasons}")
    if run:
        completions = (
            _run_local(run, store, workers or os.cpu_count() or 1)
            if backend == "local"
            else _run_ray(run, store, workers, address)
        )
        for cell, records, error in completions:
            if not executed and not failures:  # the first result: from now on a report names the missing cells
                store.record_plan(config.name, [(c.key, c.label) for c in cells])
            if records is None:
                failures.append(CellFailure(cell.key, cell.label, error or "unknown error"))
                bar.write(f"cell {cell.label} failed: {error}")
            else:
                store.write(cell.key, cell.config(), records)
                executed += 1
            bar.update()
    bar.close()
    return SweepOutcome(
        keys=tuple(cell.key for cell in cells),
        already_finished=finished,
        executed=executed,
        rerun_corrupt=corrupt,
        failures=tuple(failures),
        not_started=len(todo) - len(run),
        wall_s=time.perf_counter() - start,
        merge=store.merge(),
    )


def default_store(config: ExperimentConfig) -> Path:
    """``results/sweeps/<config name>`` under the working directory.

    Raises:
        OutputPathError: That path leaves ``results/sweeps`` (a symbolic link pointing elsewhere); the name itself
            is a single safe path component (``servegym.experiments.config`` checks it).
    """
    store = STORES_DIR / config.name
    root = STORES_DIR.resolve()
    if not store.resolve().is_relative_to(root):
        raise OutputPathError(
            f"{config.path}: the default store {store} resolves to {store.resolve()}, outside {root} (a symbolic "
            "link?); pass --store or remove the link"
        )
    return store
