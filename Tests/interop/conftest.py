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


def terminate(process, grace=10):
    """Stops a process we started: SIGTERM, then SIGKILL after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Service:
    """A server process started for a test, stopped by its own pid. `{port}` and `{http_port}`
    in its arguments are free ports; a `tasker serve` given no --http-port gets `{http_port}`,
    so that nodes side by side never share the default."""

    def __init__(self, args, port=None):
        import tempfile

        self.port = port or free_port()
        self.http_port = free_port()
        if len(args) > 1 and args[1] == "serve" and "--http-port" not in args:
            args = list(args) + ["--http-port", "{http_port}"]
        # Its output goes to a file: a pipe nobody reads fills up, and then the process stalls
        # on its next log line.
        self.log = tempfile.NamedTemporaryFile(prefix="tasker-service-", suffix=".log")
        self.process = subprocess.Popen(
            [arg.format(port=self.port, http_port=self.http_port) for arg in args], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.process)
            if "{http_port}" in args:
                wait_for_port(self.http_port, self.process)
        except RuntimeError as error:
            terminate(self.process)
            raise RuntimeError("%s; it wrote:\n%s" % (error, self.output()[-3000:])) from None

    def output(self):
        """What the process has written so far (all of it, once stopped)."""
        if self.log.closed:
            return self.final_output
        with open(self.log.name, errors="replace") as log:
            return log.read()

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        terminate(self.process)
        self.final_output = self.output()
        self.log.close()

    def alive(self):
        return self.process.poll() is None


def until(what, condition, within=15):
    """`condition()`'s first truthy value, asked every 50 ms; the test fails with `what` if none
    comes within `within` s."""
    deadline = time.time() + within
    while True:
        value = condition()
        if value:
            return value
        assert time.time() < deadline, what
        time.sleep(0.05)


def completed(stub, task_id, within=30, metadata=None):
    """The task once GetTask shows it COMPLETE; the test fails if it is not within `within` s."""
    import tasker_protos

    tasker_pb2, _ = tasker_protos.load()
    deadline = time.time() + within
    while True:
        task = stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id), metadata=metadata, timeout=10)
        if task.status == tasker_pb2.TASK_STATUS_COMPLETE:
            return task
        assert time.time() < deadline, task
        time.sleep(0.05)


def rss_kib(pid):
    """A process's resident memory, from /proc."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def tasker_serve(postgres, redis=None, extra=()):
    """`tasker serve` on the test's own Postgres (and Redis, for workers and updates)."""
    args = [binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url]
    if redis is not None:
        args += ["--redis-url", redis.url]
    return Service(args + list(extra))


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


class PrivatePostgres:
    """A Postgres of the test's own: initdb into a temporary folder, started on a free port (as
    the postgres user when running as root, which Postgres refuses), stopped by its pid."""

    def __init__(self):
        import glob
        import shutil
        import tempfile

        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not versions:
            pytest.fail("no PostgreSQL server: scripts/install-deps.sh installs the postgresql package")
        self.bin = os.path.dirname(versions[-1])
        self.root = tempfile.mkdtemp(prefix="tasker-pytest-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        as_root = os.getuid() == 0
        if as_root:
            shutil.chown(self.root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        subprocess.run(prefix + [os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "tasker", "-A", "trust",
                                 "-E", "UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
        self.prefix = prefix
        self._start()
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "tasker", "tasker"], check=True)
        self.url = "postgres://tasker@127.0.0.1:%d/tasker" % self.port

    def _start(self):
        self.process = subprocess.Popen(
            self.prefix + [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.root,
                           "-c", "listen_addresses=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        for _ in range(100):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-q"]).returncode == 0:
                break
            time.sleep(0.1)

    def _shut_down(self, signal_number):
        pid_file = os.path.join(self.data, "postmaster.pid")
        if self.process.poll() is None:
            try:
                with open(pid_file) as f:
                    os.kill(int(f.readline()), signal_number)
            except (OSError, ValueError):
                self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self, mode="fast"):
        """Stops the server as `pg_ctl stop -m fast` (SIGINT) or `-m immediate` (SIGQUIT: no
        checkpoint, crash recovery on the next start) would, and starts it again."""
        import signal

        self._shut_down(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        self._start()

    def down(self):
        """Stops the server (as `pg_ctl stop -m fast`), keeping its data for `up`."""
        import signal

        self._shut_down(signal.SIGINT)

    def up(self):
        """Starts the server again on its port, after `down`."""
        self._start()

    def query(self, sql):
        """Rows of `sql`, each a list of text columns."""
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "tasker", "-d", "tasker",
                              "-At", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def stop(self):
        import shutil
        import signal

        self._shut_down(signal.SIGINT)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    database = PrivatePostgres()
    yield database
    database.stop()


class PrivateRedis:
    """A Redis of the test's own on a free port, nothing persisted, stopped by its pid."""

    def __init__(self, port=None):
        import shutil
        import tempfile

        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("no redis-server: scripts/install-deps.sh installs the redis-server package")
        self.root = tempfile.mkdtemp(prefix="tasker-pytest-redis-")
        self.port = port or free_port()
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.root, "--save", "",
             "--appendonly", "no", "--logfile", os.path.join(self.root, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        self.url = "redis://127.0.0.1:%d" % self.port

    def stop(self):
        import shutil

        terminate(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def redis():
    server = PrivateRedis()
    yield server
    server.stop()
