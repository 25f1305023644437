"""butterflyd under systemd (Type=notify): READY=1 only once the state is restored and the API
answers, STOPPING=1 on SIGTERM, with the socket path forms systemd uses. No systemd needed: the
test plays its part on a datagram socket."""
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BUTTERFLYD, cli


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="butterfly-notify-")
        self.addCleanup(self.tmp.cleanup)
        self.endpoint = "ipc://" + os.path.join(self.tmp.name, "api")
        self.state_file = os.path.join(self.tmp.name, "state.journal")

    def start(self, notify_socket):
        env = dict(os.environ, NOTIFY_SOCKET=notify_socket)
        log = open(os.path.join(self.tmp.name, "butterflyd.log"), "ab")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [BUTTERFLYD, "--no-syslog", "--state-file", self.state_file, "-e", self.endpoint,
             "-s", os.path.join(self.tmp.name, "s")],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        return process

    def notifications(self, address):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(listener.close)
        listener.bind(address)
        listener.settimeout(20)
        return listener

    def check_ready_then_stopping(self, listener, notify_socket):
        # A state to restore first, so READY has something to wait for.
        seed = self.start(notify_socket)
        self.assertIn(b"READY=1", listener.recv(4096))
        self.assertEqual(cli(["sg", "add", "sg-restored"], self.endpoint).returncode, 0)
        seed.send_signal(signal.SIGTERM)
        self.assertEqual(listener.recv(4096), b"STOPPING=1")
        self.assertEqual(seed.wait(10), 0)

        process = self.start(notify_socket)
        message = listener.recv(4096)
        self.assertEqual(message, ("READY=1\nSTATUS=serving the API on %s" % self.endpoint).encode())
        # Ready means ready: the API answers at once, with the restored state.
        result = cli(["sg", "list"], self.endpoint, timeout=1)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "sg-restored\n")
        process.send_signal(signal.SIGTERM)
        self.assertEqual(listener.recv(4096), b"STOPPING=1")
        self.assertEqual(process.wait(10), 0)

    def test_ready_and_stopping_on_a_socket_path(self):
        path = os.path.join(self.tmp.name, "notify")
        self.check_ready_then_stopping(self.notifications(path), path)

    def test_ready_and_stopping_on_an_abstract_socket(self):
        name = "butterfly-test-notify-%d-%d" % (os.getpid(), time.time_ns() % 1000000)
        listener = self.notifications("\0" + name)
        self.check_ready_then_stopping(listener, "@" + name)

    def test_a_daemon_that_cannot_start_never_says_ready(self):
        path = os.path.join(self.tmp.name, "notify")
        listener = self.notifications(path)
        listener.settimeout(0.5)
        with open(self.state_file, "w") as f:
            f.write("not a journal")
        process = self.start(path)
        self.assertEqual(process.wait(10), 2)
        with self.assertRaises(socket.timeout):
            listener.recv(4096)


if __name__ == "__main__":
    unittest.main()
