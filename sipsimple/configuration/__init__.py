"""Configuration: typed, validated settings kept in a JSON file (or memory).

``ConfigurationManager().start()`` opens the store; ``SettingsObject`` classes
(``SIPSimpleSettings``, ``sipsimple.account.Account``) read their values
from it when made and write them back on ``save()``.
"""

from sipsimple.configuration.backend import FileBackend, MemoryBackend, StorageBackend, default_config_dir
from sipsimple.configuration.base import Setting, SettingsGroup, SettingsObject
from sipsimple.configuration.errors import ConfigurationError, ObjectNotFoundError
from sipsimple.configuration.manager import ConfigurationManager

__all__ = [
    "ConfigurationManager", "ConfigurationError", "ObjectNotFoundError",
    "StorageBackend", "FileBackend", "MemoryBackend", "default_config_dir",
    "Setting", "SettingsGroup", "SettingsObject",
]
