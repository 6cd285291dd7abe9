"""Worker processes that do not outlive the job that started them.

A worker of a ``ProcessPoolExecutor`` (``servegym sweep``, local backend) or of stable-baselines3's
``SubprocVecEnv`` (``servegym train --n-envs K``) waits on a pipe for its next task. When the driver is killed
with SIGKILL nothing cleans up, and a worker whose pipe is also held open by a sibling waits forever (or finishes
its current cell for nothing). Workers therefore call :func:`die_with_parent` first thing: on Linux it asks the
kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill the worker the moment its parent process ends. The parent
is the driver for ``fork`` workers and the fork server for ``forkserver`` workers; the fork server exits as soon
as the driver is gone, which takes its workers with it.

On other systems :func:`die_with_parent` does nothing: there a killed driver can leave workers until their pipes
close.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal the calling process receives when its parent ends (linux/prctl.h)."""


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie, ended but not yet reaped, counts as ended).

    Linux only (reads ``/proc/PID/stat``).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]  # the command name in parentheses may contain spaces
    return state not in ("Z", "X")


def die_with_parent(driver_pid: int) -> None:
    """Make the calling worker process receive SIGKILL when its parent process ends (Linux; elsewhere a no-op).

    Args:
        driver_pid: The job's main process. If it has already ended when the signal is armed (it was killed while
            this worker started), the worker kills itself at once instead of waiting for a signal that will not
            come.

    Raises:
        OSError: The kernel refused ``prctl``.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
    if not process_running(driver_pid):
        os.kill(os.getpid(), signal.SIGKILL)
