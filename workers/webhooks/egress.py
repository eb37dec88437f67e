"""Egress policy: where webhook requests may not go (SSRF protection, DESIGN section 4).

Link-local ranges and cloud metadata endpoints are refused; loopback and private ranges stay
allowed (local receivers and tests use them). The host is resolved and every address checked
before connecting, and the connected peer is checked again (a DNS answer that changes between
the two, "rebinding", is caught there).
"""

from __future__ import annotations

import ipaddress
import socket

FORBIDDEN_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16",  # IPv4 link-local, incl. 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata)
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
))


class EgressRefused(Exception):
    """The target is forbidden by policy: retrying cannot help."""


def check_address(address: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for network in FORBIDDEN_NETWORKS:
        if ip in network:
            raise EgressRefused(f"address {ip} is in the forbidden range {network}")


def check_host(host: str, port: int) -> None:
    """Resolve `host` and refuse if any address is forbidden. OSError when it does not resolve."""
    try:
        check_address(host.strip("[]"))
        return
    except ValueError:
        pass  # not a literal address: resolve it
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        check_address(sockaddr[0])
