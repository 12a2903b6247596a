"""``sipsimple receive-files --dir DIR``: receive files over MSRP (see :mod:`sipsimple.cli.filetransfer`)."""

from __future__ import annotations

from sipsimple.cli import filetransfer

NAME = "receive-files"
HELP = "wait for files sent over MSRP and store them in a directory (hash checked, resumable)"
DESCRIPTION = filetransfer.__doc__

add_arguments = filetransfer.add_receive_arguments
run = filetransfer.run_receive
