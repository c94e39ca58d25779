"""Shared helpers for the Python-side tests: binaries, free ports, processes we own."""
import os
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))


def binary(name):
    """A product of the package, built by scripts/test.sh before pytest runs."""
    bin_dir = os.environ.get("TASKER_BIN_DIR") or os.path.join(ROOT, ".build", "debug")
    path = os.path.join(bin_dir, name)
    if not os.path.exists(path):
        pytest.fail("%s is not built: run scripts/test.sh (or swift build) first" % path)
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (process.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listened on port %d within %.0fs" % (port, timeout))


class Service:
    """A server process started for a test, stopped by its own pid."""

    def __init__(self, args):
        self.port = free_port()
        self.process = subprocess.Popen(
            [arg.format(port=self.port) for arg in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process)

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self):
        return self.process.poll() is None


@pytest.fixture(scope="module")
def tasker_interop_server():
    service = Service([binary("tasker-interop-server"), "--port={port}"])
    yield service
    service.stop()


@pytest.fixture(scope="module")
def python_interop_server():
    service = Service([sys.executable, os.path.join(os.path.dirname(__file__), "interop_server.py"), "--port={port}"])
    yield service
    service.stop()
