"""How the worker and the client reach a server: plaintext or TLS (mutual, with a client
certificate), and an API token for a server that runs with --auth."""
from typing import List, Optional, Tuple

import grpc


def tls_credentials(ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None) -> grpc.ChannelCredentials:
    """TLS from PEM files: the CA to trust (None: the system's), and a client certificate and
    its key for a server that requires one (mutual TLS)."""
    def read(path: Optional[str]) -> Optional[bytes]:
        if path is None:
            return None
        with open(path, "rb") as source:
            return source.read()
    if (cert is None) != (key is None):
        raise ValueError("a client certificate and its key go together: give both or neither")
    return grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))


def channel(server: str, credentials: Optional[grpc.ChannelCredentials] = None) -> grpc.Channel:
    """A channel to `server` (host:port): TLS with `credentials`, else plaintext."""
    if not isinstance(server, str) or server.rpartition(":")[2].isdigit() is False:
        raise ValueError("server is host:port (e.g. 127.0.0.1:7420), not %r" % (str(server)[:40],))
    return grpc.secure_channel(server, credentials) if credentials is not None else grpc.insecure_channel(server)


def token_metadata(token: Optional[str]) -> Optional[List[Tuple[str, str]]]:
    """The authorization header that carries an API token."""
    return [("authorization", "Bearer " + token)] if token else None
