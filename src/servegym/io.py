"""Atomic file writes: a result file is either the old one or the complete new one, never a partial write.

:func:`check_output_file` and :func:`check_output_folder` vet an output path before any work is done (the command
line calls them on ``--out`` and friends first), so a path that cannot be written fails at once with an
:class:`~servegym.errors.OutputPathError` naming it, not after minutes of computing.

:func:`write_file_set` writes several files that belong together (``evaluate``'s CSVs and figure, a report) as a
set: first it deletes the previous set (the files its ``manifest.json`` lists that are unchanged since, and those
of the new set; a ``manifest.json`` servegym did not write is refused, so another tool's files are never
deleted), then it writes the new files, and last a new ``manifest.json`` naming the command, the servegym
version and commit, the date and every file's size and SHA-256. A folder with a manifest holds exactly the set it
describes; a folder without one holds an interrupted write, never the files of two runs side by side.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from servegym.errors import FileSetError, OutputPathError

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "servegym-manifest-1"
"""Value of the ``format`` key of :data:`MANIFEST_FILE`."""


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


def marked_block_span(text: str, begin: str, end: str) -> tuple[int, int] | None:
    """Where the text between the marker lines ``begin`` and ``end`` of a Markdown text is: (first character after
    the ``begin`` line, first character of the ``end`` line); None when a marker is missing or they are out of
    order."""
    start, stop = text.find(begin + "\n"), text.find(end)
    if start < 0 or stop < start + len(begin) + 1:
        return None
    return start + len(begin) + 1, stop


def block_markers(name: str, writer: str) -> tuple[str, str]:
    """The marker lines around a Markdown block that ``writer`` (e.g. ``scripts/experiment_drift.py``) rewrites
    with :func:`replace_marked_block`: ``<!-- NAME:begin (written by WRITER) -->`` and ``<!-- NAME:end -->``."""
    return f"<!-- {name}:begin (written by {writer}) -->", f"<!-- {name}:end -->"


def replace_marked_block(path: Path | str, begin: str, end: str, block: str) -> Path:
    """Replace the lines between the marker lines ``begin`` and ``end`` of the Markdown file ``path`` with
    ``block`` (atomically), so a script refreshes the table a document shows.

    Raises:
        OutputPathError: The file is missing or unreadable, or lacks the markers (the message names both).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OutputPathError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    span = marked_block_span(text, begin, end)
    if span is None:
        raise OutputPathError(f"{path}: needs the lines {begin!r} and then {end!r} around the block to replace")
    return atomic_write_text(path, text[: span[0]] + block.rstrip("\n") + "\n" + text[span[1] :])


def source_commit() -> str | None:
    """The git commit of the servegym source tree (``+dirty`` when it has uncommitted changes); None outside a
    git checkout or without git."""
    tree = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def run_provenance() -> dict[str, Any]:
    """What a benchmark script records of the run it starts: UTC ``date`` (ISO 8601), ``commit``
    (:func:`source_commit`, ``"unknown"`` outside a checkout) and ``machine`` (CPUs, platform, 1-minute load)."""
    import platform

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit() or "unknown",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_1min": os.getloadavg()[0]},
    }


VERSIONED_PACKAGES = ("numpy", "pandas", "highspy", "ortools", "gymnasium", "statsmodels")
"""Libraries whose versions output manifests record (the ones results depend on)."""


def package_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
    """What a benchmark's figures were measured on: platform, CPU model and count, 1-minute load average, Python,
    numpy and the versions of ``packages`` (``"not installed"`` where one is missing)."""
    import platform

    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu_model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = package_versions(("numpy", *packages))
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        **{name: installed or "not installed" for name, installed in versions.items()},
    }


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _read_manifest(path: Path) -> Mapping[str, Any]:
    """The ``files`` table of a servegym manifest at ``path`` (name → {bytes, sha256}).

    Raises:
        OutputPathError: The file is not a servegym manifest.
    """
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        manifest = None
    files = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not isinstance(manifest, Mapping) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, Mapping):
        raise OutputPathError(
            f"{path}: not a servegym output manifest ($.format is not {MANIFEST_FORMAT!r}); write to another folder "
            "or remove the file (servegym deletes only the files its own manifests list)"
        )
    return files


def _previous_set(folder: Path) -> list[str]:
    """File names of the previous set in ``folder`` that are still as its manifest recorded them (same SHA-256):
    what :func:`write_file_set` may delete. A listed file changed since is someone else's now and is kept.

    Raises:
        OutputPathError: ``folder`` holds a ``manifest.json`` that is not a servegym manifest (another tool's
            file: nothing it lists is deleted).
    """
    path = folder / MANIFEST_FILE
    if not path.exists():
        return []
    return [
        name
        for name, entry in _read_manifest(path).items()
        if isinstance(name, str)
        and name == Path(name).name
        and name not in ("", ".", "..", MANIFEST_FILE)
        and isinstance(entry, Mapping)
        and _file_sha256(folder / name) == entry.get("sha256")
    ]


def check_file_set(folder: Path | str, required: Sequence[str] = ()) -> list[Path]:
    """Check a set written by :func:`write_file_set`: its manifest lists ``required`` and every file it lists is
    there with the recorded SHA-256.

    Returns:
        The paths of the listed files.

    Raises:
        FileSetError: The manifest is missing or not servegym's, does not list a required file, or a listed file
            is missing or changed; the message names the file.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        raise FileSetError(f"{manifest}: missing (a file set is written with its manifest)")
    try:
        files = _read_manifest(manifest)
    except OutputPathError as error:
        raise FileSetError(str(error)) from None
    unlisted = [name for name in required if name not in files]
    if unlisted:
        raise FileSetError(f"{manifest}: does not list {unlisted}")
    paths = []
    for name, entry in files.items():
        path = folder / str(name)
        if not path.is_file():
            raise FileSetError(f"{path}: missing (listed in {manifest})")
        if not isinstance(entry, Mapping) or _file_sha256(path) != entry.get("sha256"):
            raise FileSetError(f"{path}: its SHA-256 differs from {manifest} (the file was changed)")
        paths.append(path)
    return paths


def write_file_set(folder: Path | str, files: Mapping[str, bytes], *, command: str) -> list[Path]:
    """Write ``files`` (name → content) into ``folder`` as one set with a ``manifest.json`` (module docstring).

    Args:
        folder: The output folder (created if missing); other files in it are left alone.
        files: Plain file names (no folders) and their bytes.
        command: The command that produced them, recorded in the manifest (e.g. ``servegym evaluate --seeds 0,1``).

    Returns:
        The paths of ``files`` in the order given (the manifest is not listed).

    Raises:
        OutputPathError: ``folder`` cannot be a folder, a name is not a plain file name or is the manifest's, or
            ``folder`` holds a ``manifest.json`` that servegym did not write.
    """
    folder = check_output_folder(folder)
    for name in files:
        if name != Path(name).name or name in ("", ".", "..", MANIFEST_FILE):
            raise OutputPathError(
                f"file set in {folder}: {name!r} must be a plain file name other than {MANIFEST_FILE}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    stale = _previous_set(folder)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    for name in {*stale, *files}:
        (folder / name).unlink(missing_ok=True)
    paths = [atomic_write_bytes(folder / name, data) for name, data in files.items()]
    manifest = {
        "format": MANIFEST_FORMAT,
        "command": command,
        "servegym": package_versions(("servegym",))["servegym"],
        "commit": source_commit(),
        "versions": package_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()
        },
    }
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return paths
