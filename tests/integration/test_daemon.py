"""butterflyd as a process: endpoints, settings from the command line and the INI file, signals,
and a daemon that dies under its clients."""
import os
import signal
import subprocess
import time
import unittest

from harness import BUTTERFLYD, Daemon, DaemonTestCase, cli, free_tcp_port


def run_daemon(args, timeout=10):
    return subprocess.run([BUTTERFLYD, "--no-syslog"] + args, capture_output=True, text=True, timeout=timeout)


class DaemonTest(DaemonTestCase):
    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_tcp_on_loopback(self):
        endpoint = "tcp://127.0.0.1:%d" % free_tcp_port()
        daemon = self.start_daemon(name="tcp", endpoint=endpoint)
        self.ok("nic", "add", "--id", "v", "--mac", "52:54:00:00:00:01", "--vni", "1", endpoint=endpoint)
        self.assertEqual(self.ok("nic", "list", endpoint=endpoint), "v\n")
        self.assertIn("unauthenticated", daemon.log())

    def test_endpoint_already_in_use_is_a_clear_failure(self):
        endpoint = "tcp://127.0.0.1:%d" % free_tcp_port()
        self.start_daemon(name="first", endpoint=endpoint)
        second = Daemon(self.tmp.name, endpoint=endpoint, name="second")
        result = subprocess.run(second.command(), capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 1)
        self.assertIn("cannot listen on '%s'" % endpoint, result.stderr)

    def test_command_line_wins_over_the_config_file(self):
        from_file = "ipc://" + os.path.join(self.tmp.name, "from-file.api")
        from_cli = "ipc://" + os.path.join(self.tmp.name, "from-cli.api")
        config = self.write("butterfly.conf", "[general]\n; comment\nendpoint=%s\nlog-level=debug\n"
                            "socket-dir=%s\n" % (from_file, os.path.join(self.tmp.name, "s")))
        daemon = self.start_daemon(name="precedence", endpoint=from_cli, args=["-c", config])
        self.assertEqual(cli(["nic", "list"], from_cli).returncode, 0)
        self.assertEqual(cli(["nic", "list"], from_file, timeout=0.5).returncode, 1)
        self.assertIn("endpoint ignored: the command line sets it", daemon.log())

    def test_bad_settings_exit_2_with_a_message_and_nothing_starts(self):
        cases = [
            (["-c", self.write("unknown.conf", "[general]\nsockt-dir=/tmp\n")], "unknown key 'sockt-dir'"),
            (["-c", self.write("value.conf", "[general]\nnic-mtu=huge\n")], "value.conf:2: --nic-mtu"),
            (["-c", self.write("psk.conf", "[security]\nencryption_key_path=/k\n")], "curve-keys"),
            (["-c", self.write("section.conf", "[genral]\nip=198.18.0.1\n")], "unknown section [genral]"),
            (["-c", os.path.join(self.tmp.name, "missing.conf")], "cannot read config file"),
            (["-i", "198.18.0"], "--ip '198.18.0' is not an IPv4 or IPv6 address"),
            (["--workers", "2", "--graph-cpu-core", "1"], "both choose the workers' cores"),
            (["-e", "udp://x"], "is not tcp://HOST:PORT"),
            (["--frobnicate"], "--frobnicate"),
        ]
        for args, expected in cases:
            result = run_daemon(args)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn(expected, result.stderr, args)

    def test_help_documents_options_file_and_precedence(self):
        result = run_daemon(["--help"])
        self.assertEqual(result.returncode, 0)
        for needle in ["--socket-dir", "--dpdk-args", "--state-file", "--curve-keys", "[general]",
                       "command line wins", "Example"]:
            self.assertIn(needle, result.stdout)
        self.assertEqual(run_daemon(["--version"]).returncode, 0)

    def test_sigterm_stops_cleanly(self):
        self.daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.process.wait(10), 0)
        self.assertIn("stopped (signal)", self.daemon.log())

    def test_daemon_killed_mid_test(self):
        self.ok("nic", "add", "--id", "v", "--mac", "52:54:00:00:00:01", "--vni", "1")
        client = subprocess.Popen(
            ["sh", "-c", 'while :; do "$0" -e "$1" -t 1 nic list >/dev/null 2>&1 || exit 7; done',
             cli.__globals__["BUTTERFLY"], self.daemon.endpoint])
        self.addCleanup(lambda: client.poll() is None and client.kill())
        time.sleep(0.5)
        self.assertIsNone(client.poll(), "the client loop runs against a live daemon")
        self.daemon.kill()
        self.assertEqual(client.wait(10), 7, "the client notices within its timeout")
        result = self.run_cli("nic", "list", timeout=1)
        self.assertEqual(result.returncode, 1)
        self.assertIn("no answer from", result.stderr)


if __name__ == "__main__":
    unittest.main()
