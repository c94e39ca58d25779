"""Certificates for the TLS tests, made with openssl in a folder of the test's own: CAs, and
server and client certificates they sign (valid, expired, or for other names)."""
import os
import shutil
import subprocess
import tempfile


class Certificates:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="tasker-certs-")

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.root)

    def ca(self, name):
        """A self-signed CA: (certificate path, key path)."""
        pem, key = self.path(name + ".pem"), self.path(name + ".key")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", pem, "-days", "30", "-subj", "/CN=%s" % name)
        return pem, key

    def issue(self, ca, name, names=("IP:127.0.0.1", "DNS:localhost"), client=False, days=30):
        """A certificate `ca` signs for `names`; negative `days` makes one that has expired.
        Returns (certificate path, key path)."""
        pem, key, request, extensions = (self.path(name + suffix) for suffix in (".pem", ".key", ".csr", ".ext"))
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", request, "-subj", "/CN=%s" % name)
        with open(extensions, "w") as out:
            out.write("subjectAltName=%s\n" % ",".join(names))
            out.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
        self._run("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                  "-out", pem, "-days", str(days), "-extfile", extensions)
        return pem, key

    def path(self, name):
        return os.path.join(self.root, name)

    def read(self, path):
        with open(path, "rb") as source:
            return source.read()

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)
