"""A throwaway CA and a server certificate for 127.0.0.1 and localhost (openssl CLI, P-256,
valid one day), like test/helpers/test-certificates.ts."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "/usr/bin/openssl"
_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class ServerCertificates:
    ca: Path
    server_cert: Path
    server_key: Path


def make_server_certificates(directory: Path) -> ServerCertificates:
    def openssl(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60)

    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    openssl(
        "req", "-x509", *_NEW_KEY, "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
        "-subj", "/CN=gradecast python test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "req",
        *_NEW_KEY,
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=gradecast test server",
    )
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "1", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return ServerCertificates(ca=ca, server_cert=cert, server_key=key)
