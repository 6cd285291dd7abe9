"""Imported by the sweep's fork server only, as its first preload module: the fork server dies with the driver.

The local backend starts its workers from a ``forkserver`` process (``servegym.experiments.sweep``). Every worker
holds the fork server's keep-alive pipe, so after a SIGKILL of the driver the fork server would wait for the
workers and the workers (armed by :func:`servegym.processes.die_with_parent` against their parent, the fork server)
for the fork server. Importing this module arms the fork server itself against its parent, the driver: killing the
driver kills the fork server, which kills the workers.

Do not import it anywhere else: the importing process would be killed when its parent ends.
"""

import os

from servegym.processes import die_with_parent

die_with_parent(os.getppid())
