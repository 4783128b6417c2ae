"""The on-disk spool: where a record waits until the monitoring database takes it.

One JSON file per record, named by its id and written atomically (write, then rename), so any
number of processes can add and drain records without coordinating, and replaying a file twice
inserts nothing twice (the store ignores ids it already has).

    from planwise_monitoring.store.spool import Spool

    spool = Spool(tmp_path / "monitoring.duckdb.spool")
    spool.put("0f9c0e4e", '{"…": 1}')
    [(path, payload)] = spool.pending()
    spool.quarantine(path, "not a record")   # kept aside as 0f9c0e4e.bad, with the reason beside it
    assert spool.quarantined_count() == 1 and spool.count() == 0

Nothing here may cost a record or block the others:

- a write that fails half-way (a full disk) leaves no partial file: its temp file is removed, and
  temp files abandoned by a killed process are removed by the next replay (and the first write
  of each process) once they are older than :data:`STRAY_TMP_SECONDS`;
- when the spool directory cannot be written (a full disk, no permission, a file in its place),
  records go to a fallback directory under the system temp dir, private to this user, which
  :meth:`Spool.pending` also reads; a warning says so once per process;
- a file that cannot be read back as a record is quarantined, never deleted: renamed ``.bad``
  with a ``.bad.reason`` file beside it, counted, and warned about once per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..redaction import redact

log = logging.getLogger("planwise_monitoring")

STRAY_TMP_SECONDS = 60.0  # a temp file is written in well under a second; older ones were abandoned
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$")  # a file name, never a path


class SpoolWriteError(OSError):
    """
        try:
            Spool(path_of_a_regular_file).put(record_id, payload)
        except SpoolWriteError as exc:
            ...  # keep the record another way; str(exc) says why for both directories

    Neither the spool directory nor its fallback could take a record.
    """


class Spool:
    """
        spool = Spool(tmp_path / "monitoring.duckdb.spool")
        spool.put(record.performance_id, record.to_json())
        [(path, payload)] = spool.pending()

    The records waiting for the database, in ``directory`` (and its fallback); see the module
    docstring. ``fallback_directory`` defaults to a directory under the system temp dir derived from
    ``directory``, so every process spooling for the same database finds the same one.
    ``clock`` (seconds, like :func:`time.time`) dates stray temp files; tests inject their own.
    """

    def __init__(self, directory: str | Path, *, fallback_directory: str | Path | None = None,
                 clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.fallback_directory = Path(fallback_directory) if fallback_directory else default_fallback(self.directory)
        self.clock = clock

    # -- writing --------------------------------------------------------------------------------
    def put(self, record_id: str, payload: str | bytes) -> Path:
        """Spool one record atomically; returns its file. Falls back to :attr:`fallback_directory`
        when the spool directory cannot be written, and raises :class:`SpoolWriteError` only when
        neither can (the caller keeps the record some other way)."""
        if not _SAFE_ID.match(record_id):
            raise ValueError(f"record id {record_id!r} cannot name a spool file")
        data = payload.encode() if isinstance(payload, str) else payload
        if _first_time(("cleaned", self.directory)):
            self._remove_stray_tmp_files()
        try:
            return _write_atomically(self.directory, record_id, data)
        except OSError as exc:
            primary = exc
        try:
            _private_directory(self.fallback_directory)
            path = _write_atomically(self.fallback_directory, record_id, data)
        except OSError as exc:
            raise SpoolWriteError(
                f"cannot spool record {record_id}: {self.directory}: {_describe(primary)}; "
                f"fallback {self.fallback_directory}: {_describe(exc)}"
            ) from None
        _warn_once(("fallback", self.directory),
                   f"spool {self.directory} cannot be written ({_describe(primary)}); records go to "
                   f"{self.fallback_directory} instead, and are replayed from there")
        return path

    # -- reading --------------------------------------------------------------------------------
    def pending(self, limit: int | None = None) -> list[tuple[Path, bytes]]:
        """Spooled payloads as bytes, oldest first, from both directories. Decoding and checking
        them is the reader's job (see ``PerformanceRecord.from_json``), so one bad file fails
        alone. Files that vanish meanwhile (another process replayed them) are skipped."""
        self._remove_stray_tmp_files()
        entries = []
        for directory in self.directories():
            for entry in _scan(directory):
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    with contextlib.suppress(FileNotFoundError):
                        if entry.is_file(follow_symlinks=False):
                            entries.append((entry.stat().st_mtime_ns, entry.name, Path(entry.path)))
        entries.sort()
        out = []
        for _, _, path in entries[:limit]:
            with contextlib.suppress(FileNotFoundError):
                out.append((path, path.read_bytes()))
        return out

    def count(self) -> int:
        """Records waiting, in both directories."""
        return sum(1 for d in self.directories() for e in _scan(d) if e.name.endswith(".json")
                   and not e.name.startswith("."))

    def has(self, record_id: str) -> bool:
        """Whether the record still waits here (in either directory)."""
        return any((d / f"{record_id}.json").exists() for d in self.directories())

    def directories(self) -> list[Path]:
        """Where records wait: the spool directory, then the fallback if it was ever used."""
        return [self.directory, self.fallback_directory]

    def remove(self, paths: Iterable[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- quarantine -----------------------------------------------------------------------------
    def quarantine(self, path: Path, reason: str) -> Path | None:
        """Set aside a spooled file that cannot be stored, so it never blocks the others: renamed
        ``<name>.bad`` (never deleted), with the reason in ``<name>.bad.reason`` beside it.
        Returns the new path, or None if another process took the file first."""
        target = _free_name(path.with_suffix(".bad"))
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None
        reason = redact(reason) or ""
        with contextlib.suppress(OSError):  # on a full disk the payload is kept, if not its reason
            target.with_name(target.name + ".reason").write_text(reason + "\n")
        _warn_once(("quarantine", path.parent),
                   f"spooled record {path.name} cannot be stored ({reason}); kept as {target}. "
                   f"Further such records in {path.parent} are set aside without a warning each; "
                   "quarantined_count() counts them")
        return target

    def quarantined_count(self) -> int:
        """Files set aside by :meth:`quarantine`, in both directories."""
        return sum(1 for d in self.directories() for e in _scan(d) if e.name.endswith(".bad"))

    def _remove_stray_tmp_files(self) -> None:
        cutoff = self.clock() - STRAY_TMP_SECONDS
        for directory in self.directories():
            for entry in _scan(directory):
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)


def default_fallback(directory: Path) -> Path:
    """
        fallback = default_fallback(Path("monitoring.duckdb.spool"))
        assert fallback.parent.name == f"planwise-monitoring-{os.geteuid()}"

    ``<tmp>/planwise-monitoring-<uid>/<spool name>-<hash of its absolute path>``: the same for
    every process of this user spooling for the same database, and apart from everyone else's."""
    digest = hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"planwise-monitoring-{os.geteuid()}" / f"{directory.name}-{digest}"


def _write_atomically(directory: Path, record_id: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{record_id}.json"
    tmp = directory / f".{record_id}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk must not leave half a record behind
            tmp.unlink()
        raise
    return final


def _private_directory(directory: Path) -> None:
    """Create the fallback (mode 0700) and make sure its parent under the shared temp dir is ours
    and not a symlink: another user could otherwise plant it and read or replace our records."""
    parent = directory.parent
    parent.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(parent)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise PermissionError(f"{parent} is not a private directory of this user")
    directory.mkdir(mode=0o700, exist_ok=True)


def _free_name(path: Path) -> Path:
    """``path``, or ``name.2.bad``, ``name.3.bad``… if an earlier file was quarantined under that name."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(directory))
    except OSError:  # missing, a file in its place, unreadable: nothing waits there for us
        return []


def _describe(exc: OSError) -> str:
    return f"{exc.strerror or exc or type(exc).__name__}" + (f" ({exc.filename})" if exc.filename else "")


_said: set[tuple[str, Path]] = set()
_said_lock = threading.Lock()
_notices: list[tuple[Path, str]] = []  # (spool directory, warning) not yet relayed to a Dagster log


def _first_time(key: tuple[str, Path]) -> bool:
    with _said_lock:
        if key in _said:
            return False
        _said.add(key)
        return True


def _warn_once(key: tuple[str, Path], message: str) -> None:
    if _first_time(key):
        log.warning("planwise-monitoring: %s", message)
        with _said_lock:
            _notices.append((key[1], message))


def take_notices(directories: Iterable[Path]) -> list[str]:
    """
        for message in take_notices(spool.directories()):
            context.log.warning(message)

    The warnings (once each per process) about these spool directories since the last call,
    for the writer to relay to the next monitored step's Dagster log; they have gone to the
    Python logger already. By directory, so one database's writer never takes another's."""
    wanted = set(directories)
    with _said_lock:
        out = [message for directory, message in _notices if directory in wanted]
        _notices[:] = [(d, m) for d, m in _notices if d not in wanted]
    return out
