"""Where the configuration is kept: a JSON file (atomically replaced) or memory.

A backend stores one JSON document, a dict (sections -> objects -> settings),
read whole by :meth:`StorageBackend.load` and written whole by
:meth:`StorageBackend.save`. Configurations are small, so whole-document
writes keep the file consistent at every moment.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sipsimple.configuration.errors import ConfigurationError

__all__ = ["StorageBackend", "FileBackend", "MemoryBackend", "default_config_dir", "CONFIG_DIR_ENV"]

CONFIG_DIR_ENV = "SIPSIMPLE_CONFIG_DIR"


def default_config_dir() -> Path:
    """``$SIPSIMPLE_CONFIG_DIR`` if set, else ``~/.config/sipsimple``."""
    value = os.environ.get(CONFIG_DIR_ENV)
    if value:
        return Path(value).expanduser()
    return Path("~/.config/sipsimple").expanduser()


@runtime_checkable
class StorageBackend(Protocol):
    """What the ConfigurationManager needs from a store."""

    def load(self) -> dict[str, Any]:
        """The stored document ({} when there is none yet); ConfigurationError when unreadable."""
        ...

    def save(self, data: dict[str, Any]) -> None:
        """Replace the stored document; on failure nothing is changed and ConfigurationError is raised."""
        ...


class MemoryBackend:
    """Keeps the document in memory (for tests and throw-away configurations)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, Any] = copy.deepcopy(data) if data else {}

    def load(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._data)

    def save(self, data: dict[str, Any]) -> None:
        try:
            text = json.dumps(data)  # what the file backend could store, nothing more
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"the configuration cannot be stored: {exc}") from None
        with self._lock:
            self._data = json.loads(text)

    def __repr__(self) -> str:
        return "MemoryBackend()"


class FileBackend:
    """A JSON file, ``config.json`` in the configuration directory.

    The directory is ``directory`` if given, else :func:`default_config_dir`.
    Writes go to a temporary file in the same directory which is flushed,
    fsynced and renamed over the old file, then the directory is fsynced: a
    crash or a failed write leaves either the old or the new file, never a
    partial one. The file is private to the user (mode 0600: it holds passwords).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, filename: str = "config.json") -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_config_dir()
        self.path = self.directory / filename
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileBackend({str(self.directory)!r})"

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read the configuration file {self.path}: {exc}") from None
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"the configuration file {self.path} is corrupt (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}); fix or remove it") from None
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"the configuration file {self.path} is corrupt: expected a JSON object at the top, "
                f"found {type(data).__name__}; fix or remove it")
        return data

    def save(self, data: dict[str, Any]) -> None:
        try:
            text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"the configuration cannot be stored: {exc}") from None
        with self._lock:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"cannot create the configuration directory {self.directory}: {exc}") from None
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, self.path)
            except BaseException as exc:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                if isinstance(exc, OSError):
                    raise ConfigurationError(f"cannot write the configuration file {self.path}: {exc}") from None
                raise
            self._sync_directory()

    def _sync_directory(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some filesystems cannot sync a directory; the rename itself is done
        finally:
            os.close(fd)
