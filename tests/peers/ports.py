"""Free loopback ports for test peers.

Ports come from below the kernel's ephemeral range, so they cannot collide with
the source ports of outgoing connections, and are chosen at random, so parallel
test processes rarely pick the same one. A port is handed out only after binding
it succeeded, and never twice to the same process.
"""

from __future__ import annotations

import random
import socket
import threading

HOST = "127.0.0.1"

_LOWEST = 10000
_given: set[int] = set()
_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HIGHEST = max(_LOWEST + 1000, _ephemeral_start()) - 1


def _bindable(port: int, udp: bool, tcp: bool) -> bool:
    kinds = ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            # no SO_REUSEADDR: a port in TIME_WAIT would fail for the peer too
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port_range(size: int, *, udp: bool = True, tcp: bool = True) -> int:
    """First of *size* consecutive free ports on 127.0.0.1 (UDP and/or TCP); the range is reserved."""
    if not (udp or tcp):
        raise ValueError("ask for UDP, TCP or both")
    with _lock:
        for _ in range(2000):
            first = random.randrange(_LOWEST, _HIGHEST - size + 1)
            ports = range(first, first + size)
            if any(p in _given for p in ports):
                continue
            if all(_bindable(p, udp, tcp) for p in ports):
                _given.update(ports)
                return first
    raise RuntimeError(f"no {size} consecutive free ports on {HOST}")


def free_port(*, udp: bool = True, tcp: bool = True) -> int:
    """A port on 127.0.0.1 that is free for UDP and TCP (or just the one asked for)."""
    return free_port_range(1, udp=udp, tcp=tcp)
