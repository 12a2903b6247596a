"""The configured accounts as the command-line tools see them.

``sipsimple account`` edits them; every other command takes the account it
runs as from here when ``--account``/``--password``/``--proxy`` do not make a
complete explicit account (see :func:`sipsimple.cli.options.settings_from_args`).

The configuration is ``config.json`` in ``--config-dir DIR``, else in
``$SIPSIMPLE_CONFIG_DIR``, else in ``~/.config/sipsimple``; it is read (and
written) through :class:`sipsimple.configuration.ConfigurationManager` and
:class:`sipsimple.account.Account`, so the CLI applies the same validation as
the SDK and an application sees the same accounts.

The default account follows the AccountManager's rule: the one chosen with
``sipsimple account default ID`` while it exists and is enabled, else the
first enabled account by id. The AccountManager itself is not started here:
started, it would make the accounts register as soon as an Engine runs, and
the commands decide themselves whether to register.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipsimple.cli.options import CLIError

__all__ = [
    "ConfiguredAccount", "configuration", "config_file", "account_ids", "resolve_account_id",
    "default_account_id", "load_account", "is_short_name", "is_ip_domain",
]


@dataclass(frozen=True)
class ConfiguredAccount:
    """What a command needs of a configured account, read while the configuration was open."""

    id: str
    enabled: bool
    password: str | None  # None: no password set (no digest authentication)
    username: str | None  # the digest username when it differs from the user part
    display_name: str | None
    route: Any  # sipsimple.core.Route or None
    register: bool
    srtp_mode: str | None  # the account's own choice; None: the command's default
    audio_codecs: tuple[str, ...] | None
    msrp_relay: str | None
    msrp_use_tls: bool = False  # msrp.use_tls: offer MSRP over TLS


def config_file(config_dir: str | None) -> Path:
    """Where the configuration of ``config_dir`` (or the default directory) is kept."""
    from sipsimple.configuration import FileBackend

    return FileBackend(config_dir).path


@contextmanager
def configuration(config_dir: str | None) -> Iterator[Any]:
    """The ConfigurationManager, started on ``config_dir`` for the block.

    A manager the process started already (an application embedding the CLI)
    is used as it is, and left running. A corrupt or unreadable file is a
    CLIError naming it.
    """
    from sipsimple.configuration import ConfigurationError, ConfigurationManager, FileBackend

    manager = ConfigurationManager()
    if manager.started:
        backend = manager.backend
        wanted = FileBackend(config_dir) if config_dir is not None else None
        if wanted is not None and getattr(backend, "path", None) != wanted.path:
            raise CLIError(f"the configuration of this process is {backend!r}, not {wanted.path}")
        yield manager
        return
    try:
        manager.start(FileBackend(config_dir))
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None
    try:
        yield manager
    finally:
        manager.stop()


def account_ids(manager: Any) -> list[str]:
    """The ids of the configured accounts, sorted."""
    return sorted(manager.ids("accounts"))


def is_short_name(text: str) -> bool:
    """``alice``: neither ``user@domain`` nor a URI, so it can only name a configured account."""
    return "@" not in text and ":" not in text


def is_ip_domain(host: str) -> bool:
    from sipsimple.core.uri import is_ip_address

    return is_ip_address(host.strip("[]"))


def resolve_account_id(manager: Any, name: str, config_dir: str | None, required: bool = True) -> str | None:
    """The id of the configured account ``name`` stands for.

    ``name`` is an account id (``user@domain``, a ``sip:`` URI of it) or the
    user part alone when exactly one account has it. An unknown name is a
    CLIError (one line, naming the configuration file), or None when not ``required``.
    """
    from sipsimple.configuration.datatypes import SIPAddress

    ids = account_ids(manager)
    if is_short_name(name.strip()):
        matches = [account_id for account_id in ids if account_id.rpartition("@")[0] == name.strip()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise CLIError(f"account name {name!r} is ambiguous: {', '.join(matches)}; give the full id")
    else:
        try:
            account_id = SIPAddress().validate(name)
        except (TypeError, ValueError) as exc:
            raise CLIError(f"invalid account {name!r}: {exc}") from None
        if account_id in ids:
            return account_id
    if not required:
        return None
    known = f"configured: {', '.join(ids)}" if ids else "no account is configured"
    raise CLIError(f"unknown account {name!r} ({known} in {config_file(config_dir)}; "
                   "add it with 'sipsimple account add')")


def default_account_id(manager: Any) -> str | None:
    """The default account's id (the AccountManager's rule, see the module docstring), or None."""
    from sipsimple.account import Account, AccountManagerSettings

    ids = account_ids(manager)
    chosen = AccountManagerSettings().default_account
    if chosen in ids and Account(chosen).enabled:
        return chosen
    return next((account_id for account_id in ids if Account(account_id).enabled), None)


def load_account(config_dir: str | None, name: str | None, required: bool = True) -> ConfiguredAccount | None:
    """The configured account ``name`` names (see :func:`resolve_account_id`), or the default one when
    ``name`` is None; None when there is none (and it is not ``required``)."""
    with configuration(config_dir) as manager:
        if name is None:
            account_id = default_account_id(manager)
        else:
            account_id = resolve_account_id(manager, name, config_dir, required)
        if account_id is None:
            return None
        return snapshot(account_id)


def snapshot(account_id: str) -> ConfiguredAccount:
    """A ConfiguredAccount of the stored account (the configuration must be open)."""
    from sipsimple.account import Account

    account = Account(account_id)
    return ConfiguredAccount(
        id=account.id, enabled=account.enabled, password=account.auth.password or None,
        username=account.auth.username, display_name=account.display_name, route=account.sip.outbound_proxy,
        register=account.sip.register, srtp_mode=account.rtp.srtp_mode,
        audio_codecs=account.rtp.audio_codec_list, msrp_relay=account.msrp.relay,
        msrp_use_tls=account.msrp.use_tls,
    )
