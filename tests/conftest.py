"""Test-session settings."""

import os

# A local Ray cluster started by a test must listen on loopback only; Ray reads this when it is first imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


import pytest
from catalog_files import copy_catalog


@pytest.fixture
def data_dir(tmp_path):
    """A writable copy of the shipped catalog directory."""
    return copy_catalog(tmp_path)
