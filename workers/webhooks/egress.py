"""Egress policy: where webhook requests may not go (SSRF protection, DESIGN section 4).

Link-local ranges and cloud metadata endpoints are always refused. Loopback, private and other
non-global addresses are allowed by default (local receivers and tests use them) and refused with
WEBHOOK_PRIVATE_TARGETS=deny, for installs where tenants choose their own URLs. The host is
resolved and every address checked before connecting, and the connected peer is checked again
(a DNS answer that changes between the two, "rebinding", is caught there).
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


_policy = {"private": "allow"}  # set once at start by the webhooks process (configure)


def configure(private_targets: str) -> None:
    """WEBHOOK_PRIVATE_TARGETS: "allow" (default) or "deny" non-global addresses."""
    _policy["private"] = private_targets


def check_address(address: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for network in FORBIDDEN_NETWORKS:
        if ip in network:
            raise EgressRefused(f"address {ip} is in the forbidden range {network}")
    # is_global is False for loopback, RFC 1918, CGNAT, ULA, documentation, reserved ranges...
    if _policy["private"] == "deny" and (not ip.is_global or ip.is_multicast):
        raise EgressRefused(f"address {ip} is not a public address (WEBHOOK_PRIVATE_TARGETS=deny)")


def check_host(host: str, port: int) -> None:
    """Resolve `host` and refuse if any address is forbidden. OSError when it does not resolve."""
    try:
        check_address(host.strip("[]"))
        return
    except ValueError:
        pass  # not a literal address: resolve it
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        check_address(sockaddr[0])
