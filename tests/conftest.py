"""Test-session settings."""

import os

# A local Ray cluster started by a test must listen on loopback only; Ray reads this when it is first imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
