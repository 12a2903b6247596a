"""ConfigurationManager: the process's one configuration store.

The document it keeps is ``{section: {object id: {setting or group: ...}}}``;
SettingsObjects read and write their part of it through :meth:`get`,
:meth:`put` and :meth:`remove`. Every change is written to the backend at
once (atomically for the file backend); when the write fails, the
in-memory document is rolled back and ConfigurationError is raised, so memory
and storage never disagree.
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any

from sipsimple.configuration.backend import FileBackend, MemoryBackend, StorageBackend
from sipsimple.configuration.errors import ConfigurationError

__all__ = ["ConfigurationManager"]


class ConfigurationManager:
    """Singleton: ``ConfigurationManager().start(backend=None)`` before any settings object is used.

    ``backend`` is a StorageBackend (``FileBackend``, ``MemoryBackend``), a
    directory path (a FileBackend there), or None for a FileBackend in
    ``$SIPSIMPLE_CONFIG_DIR`` or ``~/.config/sipsimple``. A corrupt file
    makes ``start`` raise ConfigurationError naming the file and the place.
    """

    _instance: ConfigurationManager | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> ConfigurationManager:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._lock = threading.RLock()
                instance._backend = None
                instance._data = {}
                instance._generation = 0
                cls._instance = instance
            return cls._instance

    _lock: threading.RLock
    _backend: StorageBackend | None
    _data: dict[str, dict[str, Any]]
    _generation: int

    # ------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._backend is not None

    @property
    def backend(self) -> StorageBackend | None:
        return self._backend

    @property
    def generation(self) -> int:
        """Changes at every start and stop: settings objects loaded before are stale."""
        return self._generation

    def start(self, backend: StorageBackend | str | os.PathLike[str] | None = None) -> None:
        if backend is None:
            backend = FileBackend()
        elif isinstance(backend, str | os.PathLike):
            backend = FileBackend(backend)
        elif not isinstance(backend, StorageBackend):
            raise TypeError(f"backend must be a StorageBackend or a directory, not {backend!r}")
        with self._lock:
            if self._backend is not None:
                raise ConfigurationError(f"the ConfigurationManager is already started (with {self._backend!r})")
            data = backend.load()
            problems = [name for name, section in data.items() if not isinstance(section, dict)]
            if problems:
                raise ConfigurationError(
                    f"the configuration in {backend!r} is corrupt: section(s) {', '.join(map(repr, problems))} "
                    "are not JSON objects")
            self._data = data
            self._backend = backend
            self._generation += 1

    def start_in_memory(self, data: dict[str, Any] | None = None) -> None:
        """Start with a MemoryBackend (nothing touches the disk)."""
        self.start(MemoryBackend(data))

    def stop(self) -> None:
        with self._lock:
            self._backend = None
            self._data = {}
            self._generation += 1

    def _require(self) -> StorageBackend:
        if self._backend is None:
            raise ConfigurationError("the ConfigurationManager is not started: call ConfigurationManager().start()")
        return self._backend

    # ------------------------------------------------------------ document

    def get(self, section: str, object_id: str) -> dict[str, Any] | None:
        """A copy of the stored settings of one object, or None."""
        with self._lock:
            self._require()
            data = self._data.get(section, {}).get(object_id)
            return copy.deepcopy(data) if data is not None else None

    def ids(self, section: str) -> list[str]:
        """The ids of the objects stored in ``section``, in storage order."""
        with self._lock:
            self._require()
            return list(self._data.get(section, {}))

    def put(self, section: str, object_id: str, data: dict[str, Any]) -> None:
        """Store one object's settings (replacing what was there) and write the document."""
        with self._lock:
            backend = self._require()
            new = dict(self._data)
            new[section] = dict(new.get(section, {}))
            new[section][object_id] = copy.deepcopy(data)
            backend.save(new)
            self._data = new

    def remove(self, section: str, object_id: str) -> None:
        """Forget one object and write the document (nothing happens if it is not stored)."""
        with self._lock:
            backend = self._require()
            if object_id not in self._data.get(section, {}):
                return
            new = dict(self._data)
            new[section] = {k: v for k, v in new[section].items() if k != object_id}
            if not new[section]:
                del new[section]
            backend.save(new)
            self._data = new
