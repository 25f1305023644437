"""Starts the real butterflyd and drives it with the real butterfly CLI or raw ZeroMQ.

Everything a test starts lives in its own temporary directory and is stopped by PID in the
test's cleanup, even when the test fails.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("BUTTERFLY_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build/release"))
BUTTERFLYD = os.path.join(BUILD_DIR, "src", "butterflyd")
BUTTERFLY = os.path.join(BUILD_DIR, "tools", "butterfly", "butterfly")
sys.path.insert(0, os.path.join(BUILD_DIR, "tests", "integration", "python_proto"))

import message_pb2  # noqa: E402  (generated at build time)
import message_0_pb2  # noqa: E402

# MessageV0 lives in the root package (message_0.proto); expose it beside Messages.
message_pb2.MessageV0 = message_0_pb2.MessageV0
import zmq  # noqa: E402


def sanitized_build():
    """True when BUILD_DIR was configured with BUTTERFLY_SANITIZE (ASan/UBSan or TSan binaries)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return any(line.startswith("BUTTERFLY_SANITIZE:") and line.strip().split("=", 1)[1]
                       for line in f)
    except OSError:
        return False


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One butterflyd process with its own socket dir, API endpoint and log file."""

    def __init__(self, workdir, endpoint=None, args=(), name="butterflyd", state_file="none"):
        self.workdir = workdir
        self.state_file = state_file
        self.socket_dir = os.path.join(workdir, name + "-sockets")
        self.endpoint = endpoint or "ipc://" + os.path.join(workdir, name + ".api")
        self.log_path = os.path.join(workdir, name + ".log")
        self.args = list(args)
        self.process = None

    def command(self):
        args = list(self.args)
        # DPDK probes the PCI bus by default: a test never lets it near the machine's own NICs
        # (bound to the kernel, it refuses them, but a test has no business asking).
        if not any(a in args for a in ("--no-dataplane", "--dpdk-args", "-c", "--config")):
            args += ["--dpdk-args", "--no-pci"]
        return [BUTTERFLYD, "--no-syslog", "--state-file", self.state_file, "-s", self.socket_dir,
                "-e", self.endpoint, "-l", "debug"] + args

    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdout=self.log_file, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("butterflyd exited with %s:\n%s" % (self.process.returncode, self.log()))
            if cli(["status"], self.endpoint, timeout=0.5).returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("butterflyd did not answer within %ss:\n%s" % (timeout, self.log()))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """Stops the daemon by PID: SIGTERM, then SIGKILL after 10 s. Returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        self.remove_runtime_dir_of_a_dead_daemon()
        return self.process.returncode

    def kill(self):
        self.process.kill()
        self.process.wait()
        self.remove_runtime_dir_of_a_dead_daemon()

    def runtime_dir(self):
        """DPDK's runtime files of this daemon (it names them after its PID)."""
        return "/var/run/dpdk/butterfly-%d" % self.process.pid

    def remove_runtime_dir_of_a_dead_daemon(self):
        # A daemon that exits cleanly removes its own; a killed or crashed one cannot.
        if self.process.returncode != 0:
            shutil.rmtree(self.runtime_dir(), ignore_errors=True)


def cli(args, endpoint=None, timeout=5, input_text=None, env=None):
    """Runs the butterfly CLI; returns the CompletedProcess (text output)."""
    command = [BUTTERFLY]
    if endpoint:
        command += ["-e", endpoint]
    command += ["-t", str(timeout)] + list(args)
    return subprocess.run(command, capture_output=True, text=True, input=input_text,
                          timeout=timeout + 30, env=env)


class RawClient:
    """A ZeroMQ REQ client that sends arbitrary bytes, for what the CLI never sends."""

    def __init__(self, endpoint, timeout_ms=5000):
        self.context = zmq.Context()
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms

    def send_bytes(self, payload):
        sock = self.context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        try:
            sock.send(payload)
            if not sock.poll(self.timeout_ms):
                raise AssertionError("no answer within %d ms" % self.timeout_ms)
            return sock.recv()
        finally:
            sock.close()

    def send(self, messages):
        answer = message_pb2.Messages()
        answer.ParseFromString(self.send_bytes(messages.SerializePartialToString()))
        return answer

    def request(self, fill):
        """Sends one MessageV0 request built by fill(request); returns its Response."""
        messages = message_pb2.Messages()
        message = messages.messages.add()
        message.revision = 0
        fill(message.message_0.request)
        answer = self.send(messages)
        assert len(answer.messages) == 1, answer
        return answer.messages[0].message_0.response

    def close(self):
        self.context.term()


class DaemonTestCase(unittest.TestCase):
    """Gives each test a temporary directory and a started daemon (self.daemon). Control-plane
    tests run it without DPDK (--no-dataplane); dataplane tests override daemon_args."""

    daemon_args = ("--no-dataplane",)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="butterfly-test-")
        self.addCleanup(self.tmp.cleanup)
        # None: the test starts its daemons itself.
        self.daemon = None if self.daemon_args is None else self.start_daemon(args=self.daemon_args)

    def start_daemon(self, name="butterflyd", endpoint=None, args=(), wait=True, state_file="none"):
        daemon = Daemon(self.tmp.name, endpoint=endpoint, args=args, name=name, state_file=state_file)
        self.addCleanup(daemon.stop)
        daemon.start(wait=wait)
        return daemon

    def restart_daemon(self, how, args, state_file):
        """Stops self.daemon with kill -9 (how == "kill -9") or cleanly (asserting exit 0), then
        starts it again with `args` on `state_file`, the same sockets and endpoint. Returns the
        time of the stop (time.monotonic)."""
        stopped = time.monotonic()
        if how == "kill -9":
            self.daemon.kill()
        else:
            self.assertEqual(self.daemon.stop(), 0, self.daemon.log()[-3000:])
        self.daemon = self.start_daemon(args=args, state_file=state_file)
        return stopped

    def run_cli(self, *args, endpoint=None, **kwargs):
        return cli(list(args), endpoint or self.daemon.endpoint, **kwargs)

    def ok(self, *args, **kwargs):
        """Runs the CLI and asserts exit code 0; returns stdout."""
        result = self.run_cli(*args, **kwargs)
        self.assertEqual(result.returncode, 0, "butterfly %s\nstdout: %s\nstderr: %s" %
                         (" ".join(args), result.stdout, result.stderr))
        return result.stdout

    def dump(self, endpoint=None):
        return self.ok("dump", endpoint=endpoint)
