"""Network: TCP, UDP, HTTP and DNS towards listeners the test runs on 127.0.0.1.

The verdict is the listener's: it must have received nothing. A control with ``network=True``
shows the same listener does see a session that is allowed out.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hostside import HttpListener, TcpListener, UdpListener, wait_until

from codeloop import Sandbox

Open = Callable[..., Sandbox]
Need = Callable[..., None]


def _dns_query(name: str) -> bytes:
    header = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + labels + struct.pack(">HH", 1, 1)


TCP_CLIENTS = {
    "tcp_socket": "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)",
    "tcp_subprocess": (
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\"])"
    ),
    "tcp_ipv4_mapped_v6": "import socket\ns = socket.create_connection(('::ffff:127.0.0.1', {port}), timeout=1)",
}


@pytest.mark.parametrize("how", sorted(TCP_CLIENTS))
def test_tcp_to_the_host_gets_nowhere(open_sandbox: Open, need: Need, how: str) -> None:
    need("no_network")
    listener = TcpListener()
    try:
        sb = open_sandbox()
        sb.run(TCP_CLIENTS[how].format(port=listener.port))
        assert not wait_until(lambda: listener.connections > 0, timeout=0.3)
    finally:
        listener.close()


def test_udp_to_the_host_gets_nowhere(open_sandbox: Open, need: Need) -> None:
    need("no_network")
    listener = UdpListener()
    try:
        sb = open_sandbox()
        sb.run(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range(5):\n    s.sendto(b'leak', ('127.0.0.1', {listener.port}))"
        )
        assert listener.datagrams() == 0
    finally:
        listener.close()


def test_http_to_the_host_gets_nowhere(open_sandbox: Open, need: Need) -> None:
    need("no_network")
    server = HttpListener()
    try:
        sb = open_sandbox()
        r = sb.run(
            f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{server.port}/leak', timeout=1).read()"
        )
        assert r.status == "error"
        assert server.requests == []
    finally:
        server.close()


def test_dns_queries_reach_no_resolver(open_sandbox: Open, need: Need) -> None:
    need("no_network")
    resolver = UdpListener()  # stands in for a DNS server on the host
    try:
        sb = open_sandbox()
        query = _dns_query("leak.example.com")
        sb.run(
            "import socket\ntry:\n    socket.getaddrinfo('example.com', 80)\nexcept OSError:\n    pass\n"
            f"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto({query!r}, ('127.0.0.1', {resolver.port}))"
        )
        assert resolver.datagrams() == 0
    finally:
        resolver.close()


def test_control_network_true_does_reach_the_listener(open_sandbox: Open) -> None:
    """The opt-in works, and shows the listener witness can see a connection."""
    listener = TcpListener()
    try:
        sb = open_sandbox(network=True)
        r = sb.run(TCP_CLIENTS["tcp_socket"].format(port=listener.port))
        assert r.status == "ok", r.error
        assert wait_until(lambda: listener.connections > 0)
    finally:
        listener.close()
