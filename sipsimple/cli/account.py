"""``sipsimple account``: the accounts of the configuration, so commands need no account options.

    sipsimple account add USER@DOMAIN [--password PW] [--proxy HOST:PORT[;transport=...]]
                          [--display-name NAME] [--username NAME] [--srtp MODE] [--msrp-relay URI]
                          [--default] [--no-register] [--disabled]
    sipsimple account list                 '*' marks the default account
    sipsimple account show ID [--show-password]
    sipsimple account set ID KEY=VALUE...  e.g. auth.password=secret sip.outbound_proxy=proxy:5060
    sipsimple account delete ID
    sipsimple account default [ID]         show or choose the default account

ID is the account's ``user@domain`` (a ``sip:`` URI of it works too) or, when
only one account has it, its user part alone. Once an account is configured,
``sipsimple call bob@example.com`` (and every other command) runs as the
default account, or as ``--account ID``, with its password and proxy.

KEY is a dotted setting name as ``account show`` lists them: ``enabled``,
``display_name``, ``auth.username``, ``auth.password``, ``sip.outbound_proxy``,
``sip.register``, ``sip.register_interval``, ``rtp.srtp_mode``,
``rtp.audio_codec_list``, ``msrp.relay``, ``presence.enabled``,
``presence.buddies``, ... VALUE is written as ``show`` prints it: ``true`` or
``false``, numbers, durations such as ``30s`` or ``5m``, lists separated by
commas, ``none`` for no value. Every value is checked before anything is
written: one invalid value (or unknown key) leaves the file as it was, and the
error names the setting and what it accepts.

A new account is enabled and registers when a command such as ``sipsimple
session`` runs as it (``--no-register``: calls still go through its proxy, but
it is not registered). The configuration is ``config.json`` in ``--config-dir
DIR``, else ``$SIPSIMPLE_CONFIG_DIR``, else ``~/.config/sipsimple`` (mode 0600:
it holds passwords).

Exit status: 0 success, 1 ``default`` with no default account, 2 errors
(unknown account, invalid value, unreadable configuration).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from sipsimple.cli.config import (
    account_ids,
    config_file,
    configuration,
    default_account_id,
    resolve_account_id,
)
from sipsimple.cli.options import EXIT_FAILURE, EXIT_OK, CLIError, add_config_dir_option, err, out

NAME = "account"
HELP = "add, list, show, change and delete the configured accounts"
DESCRIPTION = __doc__
COMMON_OPTIONS = False

PASSWORD_KEY = "auth.password"
MASK = "********"
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_dir_option(parser, default=argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        add_config_dir_option(sub, default=argparse.SUPPRESS)
        return sub

    add = action("add", "configure a new account")
    add.add_argument("id", metavar="USER@DOMAIN", help="the account's address")
    add.add_argument("--password", metavar="PW", help="digest password (asked for when stdin is a terminal)")
    add.add_argument("--proxy", metavar="HOST:PORT[;transport=udp|tcp|tls]",
                     help="outbound proxy and registrar (default: the domain's, from DNS)")
    add.add_argument("--display-name", metavar="NAME", help="name shown to the people called")
    add.add_argument("--username", metavar="NAME", help="digest username, when it is not the user part")
    add.add_argument("--srtp", metavar="MODE", help="off, optional or mandatory (default: optional)")
    add.add_argument("--msrp-relay", metavar="URI", help="MSRP relay for chat, e.g. msrps://relay.example.com:2855;tcp")
    add.add_argument("--default", action="store_true", help="make it the default account")
    add.add_argument("--no-register", action="store_true", help="never register it (calls still go out)")
    add.add_argument("--disabled", action="store_true", help="add it disabled (not used as the default)")

    action("list", "list the accounts ('*' marks the default)")

    show = action("show", "print every setting of an account")
    show.add_argument("id", metavar="ID")
    show.add_argument("--show-password", action="store_true", help="print the password instead of ********")

    change = action("set", "change settings of an account (all are checked before anything is written)")
    change.add_argument("id", metavar="ID")
    change.add_argument("assignments", metavar="KEY=VALUE", nargs="+")

    delete = action("delete", "remove an account from the configuration")
    delete.add_argument("id", metavar="ID")

    default = action("default", "print the default account, or make ID the default")
    default.add_argument("id", metavar="ID", nargs="?")


def run(args: argparse.Namespace) -> int:
    handlers = {"add": _add, "list": _list, "show": _show, "set": _set, "delete": _delete, "default": _default}
    if not getattr(args, "action", None):
        raise CLIError("account needs an action: add, list, show, set, delete or default")
    config_dir = getattr(args, "config_dir", None)
    with configuration(config_dir) as manager:
        return handlers[args.action](args, manager, config_dir)


# ------------------------------------------------------------ values


def parse_value(setting: Any, text: str, key: str) -> Any:
    """The value ``KEY=text`` means for ``setting`` (still to be validated by assigning it)."""
    from sipsimple.account.presence import SIPAddressList
    from sipsimple.configuration import datatypes

    kind = setting.type
    word = text.strip().lower()
    if setting.nillable and word in ("none", ""):
        return None
    if isinstance(kind, datatypes.Boolean):
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise CLIError(f"{key}: expected true or false, not {text!r}")
    if isinstance(kind, datatypes.Integer | datatypes.SampleRate):
        try:
            return int(word)
        except ValueError:
            raise CLIError(f"{key}: expected a whole number, not {text!r}") from None
    if isinstance(kind, datatypes.Float):
        try:
            return float(word)
        except ValueError:
            raise CLIError(f"{key}: expected a number, not {text!r}") from None
    if isinstance(kind, datatypes.Transports | datatypes.AudioCodecList | SIPAddressList):
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return text  # strings, durations ('30s'), routes, URIs, port ranges parse their text themselves


def format_value(value: Any) -> str:
    """How ``show`` prints a value: what ``set`` reads back."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def assign(account: Any, key: str, text: str) -> None:
    """Set the dotted setting ``key`` of ``account`` from its text; CLIError naming it when refused."""
    group = account
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if part not in type(group).__groups__:
            raise CLIError(_unknown_key(account, key))
        group = getattr(group, part)
    setting = type(group).__settings__.get(parts[-1])
    if setting is None:
        raise CLIError(_unknown_key(account, key))
    try:
        value = parse_value(setting, text, key)
    except CLIError as exc:
        raise CLIError(f"{account._label()}: {exc}") from None
    try:
        setattr(group, parts[-1], value)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def _unknown_key(account: Any, key: str) -> str:
    return f"unknown setting {key!r}; the settings are: {', '.join(account._flat())}"


def _split_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CLIError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), value


# ------------------------------------------------------------ actions


def _account(manager: Any, name: str, config_dir: str | None) -> Any:
    from sipsimple.account import Account

    return Account(resolve_account_id(manager, name, config_dir))


def _add(args: argparse.Namespace, manager: Any, config_dir: str | None) -> int:
    from sipsimple.account import Account
    from sipsimple.configuration import ConfigurationError

    try:
        account = Account(args.id)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if account.id in account_ids(manager):
        raise CLIError(f"account {account.id} exists already; change it with 'sipsimple account set'")
    if args.default and args.disabled:
        raise CLIError("a disabled account cannot be the default")
    password = args.password
    if password is None and sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass(f"password of {account.id} (empty for none): ")
    assignments = [("enabled", "false" if args.disabled else "true")]
    for key, value in ((PASSWORD_KEY, password), ("sip.outbound_proxy", args.proxy),
                       ("display_name", args.display_name), ("auth.username", args.username),
                       ("rtp.srtp_mode", args.srtp), ("msrp.relay", args.msrp_relay)):
        if value is not None:
            assignments.append((key, value))
    if args.no_register:
        assignments.append(("sip.register", "false"))
    for key, value in assignments:
        assign(account, key, value)
    previous_default = default_account_id(manager)
    try:
        account.save()
        if args.default:
            _store_default(account.id)
        elif _stored_default() is None and (previous_default or account.enabled):
            # choose the default for good now: by the AccountManager's rule alone, the first enabled
            # account by id, a later account could take over as the default just by its name
            _store_default(previous_default or account.id)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None
    default = default_account_id(manager) == account.id
    out(f"added {account.id}" + (" (the default account)" if default else ""))
    return EXIT_OK


def _list(args: argparse.Namespace, manager: Any, config_dir: str | None) -> int:
    from sipsimple.account import Account

    ids = account_ids(manager)
    if not ids:
        err(f"no accounts in {config_file(config_dir)}; add one with 'sipsimple account add USER@DOMAIN'")
        return EXIT_OK
    default = default_account_id(manager)
    width = max(len(account_id) for account_id in ids)
    for account_id in sorted(ids, key=str.casefold):
        account = Account(account_id)
        proxy = account.sip.outbound_proxy
        line = (f"{'*' if account_id == default else ' '} {account_id:<{width}}  "
                f"{'enabled ' if account.enabled else 'disabled'}  "
                f"{f'proxy {proxy}' if proxy is not None else 'no proxy'}")
        if not account.sip.register:
            line += "  (does not register)"
        out(line)
    return EXIT_OK


def _show(args: argparse.Namespace, manager: Any, config_dir: str | None) -> int:
    account = _account(manager, args.id, config_dir)
    out(f"id = {account.id}")
    out(f"default = {'yes' if default_account_id(manager) == account.id else 'no'}")
    for key, value in account._flat().items():
        text = format_value(value)
        if key == PASSWORD_KEY and text and not args.show_password:
            text = MASK
        out(f"{key} = {text}")
    return EXIT_OK


def _set(args: argparse.Namespace, manager: Any, config_dir: str | None) -> int:
    from sipsimple.configuration import ConfigurationError

    account = _account(manager, args.id, config_dir)
    pairs = [_split_assignment(text) for text in args.assignments]
    try:
        for key, value in pairs:
            assign(account, key, value)
        changed = sorted(account.get_modified())
        if changed:
            account.save()
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None
    if "enabled" in changed and not account.enabled and _stored_default() == account.id:
        err(f"note: {account.id} is disabled, so it is no longer the default account")
    out(f"updated {account.id}: {', '.join(changed)}" if changed else f"{account.id}: nothing changed")
    return EXIT_OK


def _delete(args: argparse.Namespace, manager: Any, config_dir: str | None) -> int:
    from sipsimple.configuration import ConfigurationError

    account = _account(manager, args.id, config_dir)
    try:
        account.delete()
        if _stored_default() == account.id:
            _store_default(None)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None
    out(f"deleted {account.id}")
    return EXIT_OK


def _default(args: argparse.Namespace, manager: Any, config_dir: str | None) -> int:
    from sipsimple.configuration import ConfigurationError

    if args.id is None:
        current = default_account_id(manager)
        if current is None:
            err("no default account: no account is enabled"
                if account_ids(manager) else f"no accounts in {config_file(config_dir)}")
            return EXIT_FAILURE
        out(current)
        return EXIT_OK
    account = _account(manager, args.id, config_dir)
    if not account.enabled:
        raise CLIError(f"account {account.id} is disabled; enable it first ('sipsimple account set "
                       f"{account.id} enabled=true')")
    try:
        _store_default(account.id)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None
    out(f"default account: {account.id}")
    return EXIT_OK


def _stored_default() -> str | None:
    from sipsimple.account import AccountManagerSettings

    return AccountManagerSettings().default_account


def _store_default(account_id: str | None) -> None:
    from sipsimple.account import AccountManagerSettings

    settings = AccountManagerSettings()
    settings.default_account = account_id
    settings.save()
