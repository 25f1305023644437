"""CURVE authentication: a daemon run with --curve-keys serves authorised CURVE clients only. Wrong
keys, no key, plain-text clients and a replay of a captured session get nothing through, and the CLI
says why within its --timeout."""
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import zmq

from harness import BUTTERFLY, BUTTERFLYD, Daemon, cli, free_tcp_port, message_pb2

TIMEOUT = 3


class RecordingProxy:
    """A TCP proxy for one connection at a time that records what the client sent, in the chunks
    it arrived in."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.sessions = []  # per connection: [bytes chunks from the client]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            chunks = []
            self.sessions.append(chunks)
            pumps = [threading.Thread(target=self._pump, args=(client, upstream, chunks), daemon=True),
                     threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True)]
            for pump in pumps:
                pump.start()

    @staticmethod
    def _pump(source, destination, record):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if record is not None:
                    record.append(data)
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, destination):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


class CurveTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="butterfly-curve-")
        self.addCleanup(self.tmp.cleanup)
        self.keys = self.path("keys")
        self.keygen("server", self.keys)
        self.keygen("client", self.path("admin.key"), "--server", self.keys, "--authorize", self.keys)
        # A valid key pair nobody authorised.
        self.keygen("client", self.path("stranger.key"), "--server", self.keys)
        # An authorised key that names another daemon's server key.
        self.keygen("server", self.path("other-daemon"))
        self.keygen("client", self.path("misdirected.key"), "--server", self.path("other-daemon"),
                    "--authorize", self.keys)
        self.port = free_tcp_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.daemon = Daemon(self.tmp.name, endpoint=self.endpoint, args=["--curve-keys", self.keys])
        self.addCleanup(self.daemon.stop)
        self.daemon.start(wait=False)
        deadline = time.time() + 20
        while self.as_admin("status", timeout=0.5).returncode != 0:
            self.assertIsNone(self.daemon.process.poll(), self.daemon.log())
            self.assertLess(time.time(), deadline, self.daemon.log())
            time.sleep(0.05)

    def path(self, *parts):
        return os.path.join(self.tmp.name, *parts)

    def keygen(self, *args):
        result = subprocess.run([BUTTERFLY, "keygen"] + list(args), capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def as_admin(self, *args, endpoint=None, timeout=TIMEOUT):
        return cli(["-k", self.path("admin.key")] + list(args), endpoint or self.endpoint, timeout)

    def admin_session(self):
        """A raw REQ socket authenticated with the admin key (closed at the test's end)."""
        keys = {}
        with open(self.path("admin.key")) as f:
            for line in f.read().split():
                if "=" in line:
                    name, value = line.split("=", 1)
                    keys[name] = value.encode()
        context = zmq.Context()
        self.addCleanup(context.term)
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        self.addCleanup(sock.close)
        sock.curve_serverkey = keys["server"]
        sock.curve_publickey = keys["public"]
        sock.curve_secretkey = keys["secret"]
        sock.connect(self.endpoint)
        return sock

    def sg_list(self):
        result = self.as_admin("sg", "list")
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split()

    def test_authorised_key_works_and_the_daemon_says_what_it_accepts(self):
        self.assertEqual(self.as_admin("sg", "add", "sg-admin").returncode, 0)
        self.assertEqual(self.sg_list(), ["sg-admin"])
        self.assertIn("CURVE on: 2 authorised client key(s)", self.daemon.log())
        self.assertNotIn("unauthenticated", self.daemon.log())

    def wait_for_log(self, text, count):
        deadline = time.time() + 20
        while self.daemon.log().count(text) < count:
            self.assertLess(time.time(), deadline, self.daemon.log())
            time.sleep(0.05)

    def test_sighup_reloads_the_authorised_client_keys(self):
        stranger = ["-k", self.path("stranger.key")]
        self.assertEqual(cli(stranger + ["sg", "list"], self.endpoint, TIMEOUT).returncode, 1)
        clients = os.path.join(self.keys, "clients")
        with open(self.path("stranger.key")) as f:
            public = [line for line in f.read().split() if line.startswith("public=")][0]
        with open(os.path.join(clients, "stranger.pub"), "w") as f:
            f.write(public + "\n")
        self.daemon.process.send_signal(signal.SIGHUP)
        self.wait_for_log("CURVE client keys reloaded", 1)
        self.assertIn("3 authorised (1 added, 0 removed", self.daemon.log())
        self.assertEqual(cli(stranger + ["sg", "list"], self.endpoint, TIMEOUT).returncode, 0)

        # A session the admin key opened before its removal: served before, nothing after.
        session = self.admin_session()
        status = message_pb2.Messages()
        message = status.messages.add()
        message.revision = 0
        message.message_0.request.app_status = True
        session.send(status.SerializeToString())
        self.assertTrue(session.poll(TIMEOUT * 1000), "the open session is served")
        session.recv()

        admin_pub = [name for name in os.listdir(clients) if name.startswith("admin")]
        self.assertEqual(len(admin_pub), 1, os.listdir(clients))
        os.remove(os.path.join(clients, admin_pub[0]))
        self.daemon.process.send_signal(signal.SIGHUP)
        self.wait_for_log("CURVE client keys reloaded", 2)
        self.assertIn("2 authorised (0 added, 1 removed", self.daemon.log())
        result = self.as_admin("sg", "list")
        self.assertEqual(result.returncode, 1, "a removed key is refused from the next connection")
        self.assertIn("refused this client's CURVE key", result.stderr)
        session.send(status.SerializeToString())
        self.assertEqual(session.poll(1500), 0, "a session of a removed key was still served")
        self.wait_for_log("no longer authorised", 1)

        # A file that is not a key: the reload is refused, the keys in use stay.
        with open(os.path.join(clients, "broken.pub"), "w") as f:
            f.write("public=not-a-key\n")
        self.daemon.process.send_signal(signal.SIGHUP)
        self.wait_for_log("CURVE client keys not reloaded, the 2 in use are kept", 1)
        self.assertIn("broken.pub", self.daemon.log())
        self.assertEqual(cli(stranger + ["sg", "list"], self.endpoint, TIMEOUT).returncode, 0)
        self.assertIsNone(self.daemon.process.poll(), "SIGHUP does not stop the daemon")

    def test_wrong_key_no_key_and_plain_text_get_nothing_through_and_a_clear_error(self):
        cases = {
            "unauthorised key": (["-k", self.path("stranger.key")], "refused this client's CURVE key"),
            "wrong server key": (["-k", self.path("misdirected.key")], "is the server key"),
            "no key": ([], "it requires CURVE authentication: pass -k/--key"),
        }
        for name, (key_args, expected) in cases.items():
            with self.subTest(name):
                started = time.time()
                result = cli(key_args + ["sg", "add", "sg-intruder"], self.endpoint, timeout=TIMEOUT)
                elapsed = time.time() - started
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(expected, result.stderr)
                self.assertLess(elapsed, TIMEOUT, "no hang beyond --timeout")
        self.assertEqual(self.sg_list(), [])
        log = self.daemon.log()
        self.assertIn("is not in %s/clients/" % self.keys, log)
        self.assertIn("refused a client on %s" % self.endpoint, log)

    def test_raw_clients_without_an_authorised_key_receive_no_answer(self):
        context = zmq.Context()
        self.addCleanup(context.term)
        stranger_public, stranger_secret = zmq.curve_keypair()
        with open(os.path.join(self.keys, "server.pub")) as f:
            server_public = f.read().split("=", 1)[1].strip().encode()
        request = message_pb2.Messages()
        message = request.messages.add()
        message.revision = 0
        message.message_0.request.sg_add.id = "sg-raw"
        for name in ("plain text", "unknown key"):
            with self.subTest(name):
                sock = context.socket(zmq.REQ)
                sock.setsockopt(zmq.LINGER, 0)
                if name == "unknown key":
                    sock.curve_serverkey = server_public
                    sock.curve_publickey = stranger_public
                    sock.curve_secretkey = stranger_secret
                sock.connect(self.endpoint)
                sock.send(request.SerializeToString())
                self.assertEqual(sock.poll(1500), 0, "an answer came back")
                sock.close()
        self.assertEqual(self.sg_list(), [])

    def test_replayed_session_changes_nothing_and_the_daemon_keeps_serving(self):
        proxy = RecordingProxy(self.port)
        self.addCleanup(proxy.close)
        through_proxy = "tcp://127.0.0.1:%d" % proxy.port
        result = self.as_admin("sg", "add", "sg-replayed", endpoint=through_proxy)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.sg_list(), ["sg-replayed"])
        deadline = time.time() + 5
        while not proxy.sessions and time.time() < deadline:
            time.sleep(0.01)
        captured = [chunk for chunks in proxy.sessions[:1] for chunk in chunks]
        self.assertGreater(sum(map(len, captured)), 64 + 200, "greeting, handshake and request")
        self.assertEqual(self.as_admin("sg", "del", "sg-replayed").returncode, 0)
        self.assertEqual(self.sg_list(), [])

        for pace in (0, 0.05):  # all at once, and chunk by chunk as the client sent them
            with socket.create_connection(("127.0.0.1", self.port)) as replay:
                replay.settimeout(0.5)
                for chunk in captured:
                    try:
                        replay.sendall(chunk)
                    except OSError:
                        break  # the daemon hung up: the replay is over
                    time.sleep(pace)
                try:
                    while replay.recv(65536):
                        pass
                except OSError:
                    pass
        time.sleep(0.2)
        self.assertEqual(self.sg_list(), [], "the replayed sg_add did not apply")
        self.assertIn("its handshake does not decrypt", self.daemon.log())
        self.assertIsNone(self.daemon.process.poll())


class CurveSettingsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="butterfly-curve-")
        self.addCleanup(self.tmp.cleanup)

    def run_daemon(self, *args, endpoint=None):
        endpoint = endpoint or "ipc://" + os.path.join(self.tmp.name, "api")
        return subprocess.run([BUTTERFLYD, "--no-syslog", "--state-file", "none", "-e", endpoint,
                               "-s", os.path.join(self.tmp.name, "s")] + list(args),
                              capture_output=True, text=True, timeout=20)

    def test_missing_or_invalid_key_files_stop_the_daemon_with_exit_2(self):
        keys = os.path.join(self.tmp.name, "keys")
        subprocess.run([BUTTERFLY, "keygen", "server", keys], check=True, capture_output=True)
        missing = os.path.join(self.tmp.name, "nowhere")
        result = self.run_daemon("--curve-keys", missing)
        self.assertEqual(result.returncode, 2)
        self.assertIn("'%s/server.key'" % missing, result.stderr)

        bad_client = os.path.join(keys, "clients", "bad.pub")
        with open(bad_client, "w") as f:
            f.write("public=not-a-key\n")
        result = self.run_daemon("--curve-keys", keys)
        self.assertEqual(result.returncode, 2)
        self.assertIn("'%s'" % bad_client, result.stderr)
        self.assertIn("is not a 40-character Z85 CURVE key", result.stderr)

        os.remove(bad_client)
        os.rmdir(os.path.join(keys, "clients"))
        result = self.run_daemon("--curve-keys", keys)
        self.assertEqual(result.returncode, 2)
        self.assertIn("%s/clients" % keys, result.stderr)

    def test_cli_with_a_key_against_a_plain_text_daemon_fails_cleanly(self):
        keys = os.path.join(self.tmp.name, "keys")
        key_file = os.path.join(self.tmp.name, "admin.key")
        subprocess.run([BUTTERFLY, "keygen", "server", keys], check=True, capture_output=True)
        subprocess.run([BUTTERFLY, "keygen", "client", key_file, "--server", keys], check=True,
                       capture_output=True)
        daemon = Daemon(self.tmp.name, name="plain")
        self.addCleanup(daemon.stop)
        daemon.start()
        started = time.time()
        result = cli(["-k", key_file, "nic", "list"], daemon.endpoint, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 1)
        self.assertIn("CURVE", result.stderr)
        self.assertLess(time.time() - started, TIMEOUT)

    def test_without_curve_a_non_loopback_endpoint_is_a_warning(self):
        endpoint = "tcp://0.0.0.0:%d" % free_tcp_port()
        daemon = Daemon(self.tmp.name, endpoint=endpoint, name="open")
        self.addCleanup(daemon.stop)
        daemon.start(wait=False)
        deadline = time.time() + 20
        while "listening on" not in daemon.log() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("warning: api: listening on %s without authentication" % endpoint, daemon.log())
        help_text = self.run_daemon("--help").stdout
        self.assertIn("default tcp://127.0.0.1:9999, loopback only", help_text)


if __name__ == "__main__":
    unittest.main()
