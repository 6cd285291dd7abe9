"""Atomic file writes: a result file is either the old one or the complete new one, never a partial write.

:func:`check_output_file` and :func:`check_output_folder` vet an output path before any work is done (the command
line calls them on ``--out`` and friends first), so a path that cannot be written fails at once with an
:class:`~servegym.errors.OutputPathError` naming it, not after minutes of computing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from servegym.errors import OutputPathError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_parents(path: Path, what: str) -> None:
    """Raise unless the nearest existing ancestor of ``path`` is a writable folder (so the rest can be created)."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputPathError(f"{what} {path}: {parent} is a file, not a folder (choose another path)")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputPathError(f"{what} {path}: folder {parent} is not writable")
            return


def _output_path(path: Path | str, what: str) -> Path:
    if not str(path).strip():
        raise OutputPathError(f"{what} is empty; give a path")
    return Path(path)


def check_output_file(path: Path | str, what: str = "output file") -> Path:
    """``path`` as a ``Path`` if a file can be written there (created with its folders if missing).

    Args:
        path: The file to be written.
        what: How the message names it (e.g. ``--out``).

    Raises:
        OutputPathError: The path is empty, an existing folder, or lies under a regular file or an unwritable
            folder.
    """
    path = _output_path(path, what)
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder; give a file path (e.g. {path / 'out.json'})")
    _check_parents(path, what)
    return path


def check_output_folder(path: Path | str, what: str = "output folder") -> Path:
    """``path`` as a ``Path`` if it is, or can be created as, a folder to write files into.

    Raises:
        OutputPathError: The path is empty, an existing file, or lies under a regular file or an unwritable folder.
    """
    path = _output_path(path, what)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path} is a file, not a folder; choose a folder path")
    if not path.exists():
        _check_parents(path, what)
    elif not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path} is not writable")
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Raises:
        OutputPathError: ``path`` cannot be written (see :func:`check_output_file`).
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual mode
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, payload: Any) -> Path:
    """Write ``payload`` as indented JSON atomically (NaN/inf are rejected: they are not JSON)."""
    return atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
