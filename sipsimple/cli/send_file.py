"""``sipsimple send-file TARGET FILE``: send a file over MSRP (see :mod:`sipsimple.cli.filetransfer`)."""

from __future__ import annotations

from sipsimple.cli import filetransfer

NAME = "send-file"
HELP = "send a file over MSRP (RFC 5547), with a progress bar"
DESCRIPTION = filetransfer.__doc__

add_arguments = filetransfer.add_send_arguments
run = filetransfer.run_send
