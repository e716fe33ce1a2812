"""Fixtures of the `lepton` package's tests: a real lepton_server on a free
loopback port.

CTest runs these files (clients/python/CMakeLists.txt, label python) with
LEPTON_SERVER set to the lepton_server it built and PYTHONPATH set to
build/python, exactly as docs/python.md tells users. By hand:

  PYTHONPATH=build/python LEPTON_SERVER=build/server/lepton_server \\
      /usr/bin/python3 -m pytest -q clients/python/tests
"""
import os
import re
import signal
import subprocess
import time

import pytest

import lepton


class ServerProcess:
    """lepton_server --listen=127.0.0.1:0 with its own data directory (or
    none); `target` once it has logged "serving on port N". Stopped with
    SIGTERM by stop(), which returns its exit status."""

    def __init__(self, directory, flags=(), data=True):
        binary = os.environ.get("LEPTON_SERVER")
        if not binary:
            pytest.fail("LEPTON_SERVER must name the lepton_server binary "
                        "(CTest sets it)")
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.log_path = os.path.join(self.directory, "server.log")
        argv = [binary, "--listen=127.0.0.1:0", "--metrics_listen=",
                "--data_dir=" + (os.path.join(self.directory, "data")
                                 if data else "")]
        argv.extend(flags)
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(argv, cwd=self.directory,
                                        stdout=subprocess.DEVNULL,
                                        stderr=self.log)
        self.port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"serving on port (\d+)", self.log_text())
            if match:
                self.port = int(match.group(1))
                break
            if self.process.poll() is not None:
                pytest.fail(f"lepton_server exited with status "
                            f"{self.process.returncode} before serving:\n"
                            f"{self.log_text()}")
            time.sleep(0.05)
        if self.port is None:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"lepton_server did not report its port within 60 s:\n"
                        f"{self.log_text()}")
        self.target = f"127.0.0.1:{self.port}"

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=30):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of the test module's own, durable (--fsync=never: the tests
    do not crash it), stopped at the end, which must exit 0."""
    process = ServerProcess(tmp_path_factory.mktemp("server"),
                            ["--fsync=never"])
    yield process
    status = process.stop()
    assert status == 0, process.log_text()


@pytest.fixture(scope="module")
def client(server):
    with lepton.Client(server.target, timeout=30) as c:
        c.wait_ready()
        yield c


@pytest.fixture
def name(request):
    """A model name unique to the test (and its parameters)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:120]
