"""Every interop case in both directions: grpcio against this transport's server, and this
transport's client against a grpcio server."""
import subprocess

import pytest

from conftest import binary
import interop_client

CASES = list(interop_client.CASES)


@pytest.mark.parametrize("case", CASES)
def test_grpcio_client_against_tasker_server(tasker_interop_server, case):
    interop_client.run("127.0.0.1", tasker_interop_server.port, case)
    assert tasker_interop_server.alive()


@pytest.mark.parametrize("case", CASES)
def test_tasker_client_against_grpcio_server(python_interop_server, case):
    result = subprocess.run(
        [binary("tasker-interop-client"), "--server_host=127.0.0.1",
         "--server_port=%d" % python_interop_server.port, "--test_case=%s" % case],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS %s" % case in result.stdout


def test_tasker_client_rejects_unknown_case(python_interop_server):
    result = subprocess.run(
        [binary("tasker-interop-client"), "--server_port=%d" % python_interop_server.port, "--test_case=no_such_case"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "unknown test case 'no_such_case'" in result.stderr
