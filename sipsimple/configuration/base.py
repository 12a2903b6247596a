"""Declarative settings: Setting, SettingsGroup, SettingsObject.

::

    class RTPSettings(SettingsGroup):
        port_range = Setting(type=PortRange, default=(50000, 50500))
        srtp_mode = Setting(type=SRTPMode, default='optional')

    class MySettings(SettingsObject):
        __section__ = 'settings'
        __id__ = 'MySettings'          # a singleton: one object, stored under this id
        rtp = RTPSettings               # a nested group
        user_agent = Setting(type=str, default='me')

    settings = MySettings()            # loads what is stored
    settings.rtp.srtp_mode = 'mandatory'   # validated now: ValueError/TypeError naming the setting
    settings.save()                    # written (atomically), then CFGSettingsObjectDidChange

Values are validated on assignment, so an invalid value is never held, let
alone written. Only values that were assigned are stored; the rest follow the
declared defaults. ``del obj.group.setting`` goes back to the default.

Objects of a class with ``__id__`` are singletons; the others are made with
an id (``Account('alice@example.com')``) and the same id gives the same
object while it lives. Objects are loaded from the ConfigurationManager when
made, and become stale when the manager is stopped or restarted (the next
``Class(id)`` loads afresh).

Notifications (sender: the object): ``CFGSettingsObjectWasCreated`` (first
save), ``CFGSettingsObjectDidChange`` (a later save that changed something;
data ``modified = {'group.setting': (old, new)}``), ``CFGSettingsObjectWasDeleted``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, ClassVar

from sipsimple.configuration.datatypes import DataType, NonEmptyString, as_datatype
from sipsimple.configuration.errors import ConfigurationError
from sipsimple.configuration.manager import ConfigurationManager
from sipsimple.notification import NotificationCenter, NotificationData

__all__ = ["Setting", "SettingsGroup", "SettingsObject"]


class Setting:
    """A typed, validated setting, declared as a class attribute of a SettingsGroup.

    ``type`` is a DataType (instance or class) or bool/int/float/str;
    ``default`` is validated at declaration; ``nillable`` allows None.
    """

    def __init__(self, type: Any, default: Any = None, nillable: bool = False) -> None:
        self.type: DataType = as_datatype(type)
        self.nillable = nillable
        self.name = "<unnamed>"
        if default is None and not nillable:
            raise TypeError("a setting that is not nillable needs a default")
        self.default = self.validate(default, "default")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Setting(type={self.type!r}, default={self.default!r}, nillable={self.nillable})"

    def validate(self, value: Any, where: str) -> Any:
        """The normalised value; the error names ``where`` (the setting's full name)."""
        if value is None:
            if self.nillable:
                return None
            raise ValueError(f"{where}: may not be None (expected a {self.type.name})")
        try:
            return self.type.validate(value)
        except TypeError as exc:
            raise TypeError(f"{where}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def dump(self, value: Any) -> Any:
        return None if value is None else self.type.dump(value)

    def load(self, data: Any, where: str) -> Any:
        if data is None:
            return self.validate(None, where)
        try:
            return self.type.load(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def __get__(self, instance: SettingsGroup | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance._values.get(self.name, self.default)

    def __set__(self, instance: SettingsGroup, value: Any) -> None:
        value = self.validate(value, instance._qualname(self.name))
        with instance._root._lock:
            instance._values[self.name] = value

    def __delete__(self, instance: SettingsGroup) -> None:
        with instance._root._lock:
            instance._values.pop(self.name, None)


class _GroupSlot:
    """Class attribute standing for a nested group; each object gets its own group instance."""

    def __init__(self, name: str, group: type[SettingsGroup]) -> None:
        self.name = name
        self.group = group

    def __get__(self, instance: SettingsGroup | None, owner: type) -> Any:
        if instance is None:
            return self.group
        return instance._groups[self.name]

    def __set__(self, instance: SettingsGroup, value: Any) -> None:
        raise AttributeError(f"{instance._qualname(self.name)} is a settings group; set its settings instead")


class _GroupMeta(type):
    """Collects the settings and nested groups of a class, including inherited ones."""

    __settings__: dict[str, Setting]
    __groups__: dict[str, type[SettingsGroup]]

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        settings: dict[str, Setting] = {}
        groups: dict[str, type[SettingsGroup]] = {}
        for base in reversed(cls.__mro__[1:]):
            settings.update(getattr(base, "__settings__", {}))
            groups.update(getattr(base, "__groups__", {}))
        for key, value in namespace.items():
            if isinstance(value, Setting):
                settings[key] = value
                groups.pop(key, None)
            elif isinstance(value, type) and issubclass(value, SettingsGroup) and not issubclass(value, SettingsObject):
                if value.__qualname__ == f"{cls.__qualname__}.{key}":
                    continue  # a group class defined inside this one: a declaration, not a member
                groups[key] = value
                settings.pop(key, None)
                setattr(cls, key, _GroupSlot(key, value))
        cls.__settings__ = settings
        cls.__groups__ = groups


class SettingsGroup(metaclass=_GroupMeta):
    """A named set of settings (and nested groups) inside a SettingsObject."""

    _root: SettingsObject
    _path: str

    def __init__(self, root: SettingsObject | None = None, path: str = "") -> None:
        object.__setattr__(self, "_root", root if root is not None else self)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_groups", {
            name: group(self._root, f"{path}.{name}" if path else name)
            for name, group in type(self).__groups__.items()
        })

    _values: dict[str, Any]
    _groups: dict[str, SettingsGroup]

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in type(self).__settings__ and name not in type(self).__groups__ \
                and not isinstance(getattr(type(self), name, None), property):
            raise AttributeError(f"{self._qualname(name)}: no such setting")
        super().__setattr__(name, value)

    def _qualname(self, name: str) -> str:
        path = f"{self._path}.{name}" if self._path else name
        return f"{self._root._label()}: {path}"

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__settings__)
        return f"<{type(self).__name__} {self._path or ''} {items}>"

    # -------------------------------------------------- (de)serialisation

    def _flat(self, prefix: str = "") -> dict[str, Any]:
        """Every effective value by full dotted name."""
        result = {f"{prefix}{name}": getattr(self, name) for name in type(self).__settings__}
        for name, group in self._groups.items():
            result.update(group._flat(f"{prefix}{name}."))
        return result

    def _dump(self) -> dict[str, Any]:
        """The assigned values (not defaults), as JSON data."""
        settings = type(self).__settings__
        data: dict[str, Any] = {name: settings[name].dump(value) for name, value in self._values.items()}
        for name, group in self._groups.items():
            sub = group._dump()
            if sub:
                data[name] = sub
        return data

    def _load(self, data: dict[str, Any], extra: dict[str, Any]) -> None:
        """Take stored values (validated); unknown keys are kept aside in ``extra``."""
        settings = type(self).__settings__
        for key, value in data.items():
            if key in settings:
                self._values[key] = settings[key].load(value, self._qualname(key))
            elif key in self._groups:
                if not isinstance(value, dict):
                    raise ValueError(f"{self._qualname(key)}: expected a group of settings, found {value!r}")
                sub_extra: dict[str, Any] = {}
                self._groups[key]._load(value, sub_extra)
                if sub_extra:
                    extra[key] = sub_extra
            else:
                extra[key] = value


def _merge(data: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = dict(data)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        elif key not in result and isinstance(value, dict):
            result[key] = _merge({}, value)
        elif key not in result:
            result[key] = value
    return result


class _ObjectMeta(_GroupMeta):
    """Makes ``Class(id)`` give the live object for that id (or the singleton)."""

    _instances: weakref.WeakValueDictionary[tuple[type, str], SettingsObject]
    _singletons: dict[type, SettingsObject]
    _instances_lock: threading.RLock

    def __call__(cls, id: str | None = None) -> Any:  # noqa: A002 - the seed's name
        meta = type(cls)
        if cls.__id__ is not None:
            if id is not None and id != cls.__id__:
                raise ValueError(f"{cls.__name__} is a singleton (id {cls.__id__!r})")
            id = cls.__id__
        elif id is None:
            raise TypeError(f"{cls.__name__} needs an id")
        else:
            id = cls._validate_id(id)
        manager = ConfigurationManager()
        with meta._instances_lock:
            instance = meta._instances.get((cls, id))
            if instance is not None and instance._generation == manager.generation:
                return instance
            instance = super().__call__(id)
            meta._instances[(cls, id)] = instance
            if cls.__id__ is not None:
                meta._singletons[cls] = instance  # singletons live as long as the manager's run
            return instance

    def _forget(cls, instance: SettingsObject) -> None:
        meta = type(cls)
        with meta._instances_lock:
            key = (cls, instance.id)
            if meta._instances.get(key) is instance:
                del meta._instances[key]
            if meta._singletons.get(cls) is instance:
                del meta._singletons[cls]


_ObjectMeta._instances = weakref.WeakValueDictionary()
_ObjectMeta._singletons = {}
_ObjectMeta._instances_lock = threading.RLock()


class SettingsObject(SettingsGroup, metaclass=_ObjectMeta):
    """A stored object of settings, named by an id within its ``__section__``.

    Subclasses set ``__section__`` (where objects are kept) and either
    ``__id__`` (a singleton) or ``__id_type__`` (a DataType ids are checked with).
    """

    __section__: ClassVar[str] = "objects"
    __id__: ClassVar[str | None] = None
    __id_type__: ClassVar[DataType] = NonEmptyString()

    _lock: threading.RLock

    def __init__(self, id: str) -> None:  # noqa: A002
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "id", id)
        super().__init__(None, "")
        manager = ConfigurationManager()
        object.__setattr__(self, "_generation", manager.generation)
        stored = manager.get(self.__section__, id)  # raises if the manager is not started
        extra: dict[str, Any] = {}
        if stored is not None:
            try:
                self._load(stored, extra)
            except ValueError as exc:
                raise ConfigurationError(
                    f"invalid stored configuration in {manager.backend!r}: {exc}; fix or remove it") from None
        object.__setattr__(self, "_extra", extra)
        object.__setattr__(self, "_stored", stored is not None)
        object.__setattr__(self, "_saved_values", self._flat())
        object.__setattr__(self, "_saved_data", self._dump())

    id: str
    _extra: dict[str, Any]
    _stored: bool
    _saved_values: dict[str, Any]
    _saved_data: dict[str, Any]
    _generation: int

    @classmethod
    def _validate_id(cls, id: Any) -> str:  # noqa: A002
        try:
            return cls.__id_type__.validate(id)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"invalid {cls.__name__} id {id!r}: {exc}") from None

    def _label(self) -> str:
        return type(self).__name__ if type(self).__id__ is not None else f"{type(self).__name__} {self.id!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    @property
    def is_stored(self) -> bool:
        """True once saved (or loaded from storage), until deleted."""
        return self._stored

    def get_modified(self) -> dict[str, tuple[Any, Any]]:
        """Unsaved changes: ``{'group.setting': (saved, current)}``."""
        with self._lock:
            current = self._flat()
            return {key: (self._saved_values.get(key), value) for key, value in current.items()
                    if self._saved_values.get(key) != value}

    def save(self) -> None:
        """Store the object. Posts CFGSettingsObjectWasCreated the first time, later
        CFGSettingsObjectDidChange when something changed. ConfigurationError when the
        write failed (then nothing is stored and the changes stay pending)."""
        manager = ConfigurationManager()
        with self._lock:
            if self._generation != manager.generation:
                raise ConfigurationError(f"{self._label()} is stale: the ConfigurationManager was restarted")
            data = self._dump()
            created = not self._stored
            modified = self.get_modified()
            if not created and data == self._saved_data:
                return
            manager.put(self.__section__, self.id, _merge(data, self._extra))
            object.__setattr__(self, "_stored", True)
            object.__setattr__(self, "_saved_values", self._flat())
            object.__setattr__(self, "_saved_data", data)
        if created:
            self._post("CFGSettingsObjectWasCreated", modified=modified)
        elif modified:
            self._post("CFGSettingsObjectDidChange", modified=modified)
        self._did_save(created, modified)

    def delete(self) -> None:
        """Remove the object from storage; posts CFGSettingsObjectWasDeleted.

        ``Class(id)`` afterwards gives a new object with default values.
        """
        manager = ConfigurationManager()
        with self._lock:
            if not self._stored:
                type(self)._forget(self)
                return
            if self._generation != manager.generation:
                raise ConfigurationError(f"{self._label()} is stale: the ConfigurationManager was restarted")
            manager.remove(self.__section__, self.id)
            object.__setattr__(self, "_stored", False)
            type(self)._forget(self)
        self._post("CFGSettingsObjectWasDeleted")
        self._did_delete()

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))

    # hooks for subclasses, called after the notification, without locks held
    def _did_save(self, created: bool, modified: dict[str, tuple[Any, Any]]) -> None:
        pass

    def _did_delete(self) -> None:
        pass
