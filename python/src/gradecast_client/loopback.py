"""Which addresses stay on this machine, the only ones a grader token may reach without TLS."""

import re

_IPV4_LOOPBACK = re.compile(r"^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


def is_loopback_address(address: str) -> bool:
    """Whether a `host:port` address (or a bare host) is `localhost`, `127.0.0.0/8` or `::1`.

    The same rule as the TypeScript client's, so both refuse the same plaintext targets.
    """
    host = address
    if host.startswith("["):  # [::1]:50051
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:  # host:port; a bare IPv6 address has several colons
        host = host.rsplit(":", 1)[0]
    host = host.lower()
    return host in ("localhost", "::1") or _IPV4_LOOPBACK.match(host) is not None
