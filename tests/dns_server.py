"""A tiny authoritative DNS server on a loopback address, for RFC 3263 tests (dnspython)."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DNSServer:
    """Answers from ``records``: {(name, type): [rdata text, ...]}; NXDOMAIN for the rest.

    Binds 127.0.0.x:53 (resolv.conf has no port syntax), so it needs root, as tests here have.
    """

    def __init__(self, records: dict[tuple[str, str], list[str]], address: str = "127.0.0.53") -> None:
        self.records = {(name.lower().rstrip(".") + ".", rtype.upper()): values
                        for (name, rtype), values in records.items()}
        self.address = address
        self.queries: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.1)  # so that close() is noticed
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    def resolv_conf(self, path) -> str:
        with open(path, "w") as f:
            f.write(f"nameserver {self.address}\noptions timeout:1 attempts:1\n")
        return str(path)

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name, rtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rtype))
            values = self.records.get((name, rtype))
            if values:
                response.answer.append(dns.rrset.from_text_list(name, 60, dns.rdataclass.IN, rtype, values))
            elif not any(key[0] == name for key in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self.sock.close()
