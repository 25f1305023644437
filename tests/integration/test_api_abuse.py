"""Clients that misbehave on the API: they leave before their answer, send frames too big to read,
send text that is not text, or make the daemon build huge answers. None may take the API from the
others, and the memory they made the daemon use goes back once the state they built is gone."""
import multiprocessing
import os
import resource
import subprocess
import tempfile
import time
import unittest

import zmq

import socket

from harness import (BUTTERFLY, DaemonTestCase, RawClient, free_tcp_port, message_pb2,
                     sanitized_build)

REJECTED = 4


def request_bytes(fill, message_id="m"):
    messages = message_pb2.Messages()
    message = messages.messages.add()
    message.revision = 0
    message.message_0.message_id = message_id
    fill(message.message_0.request)
    return messages.SerializeToString()


def big_security_group(client, sg_id, rules):
    """Fills `sg_id` with `rules` distinct inbound TCP rules, 2,000 per frame."""
    for first in range(0, rules, 2000):
        messages = message_pb2.Messages()
        for i in range(first, min(rules, first + 2000)):
            message = messages.messages.add()
            message.revision = 0
            add = message.message_0.request.sg_rule_add
            add.sg_id = sg_id
            add.rule.direction = 0
            add.rule.protocol = 6
            add.rule.port_start = add.rule.port_end = i % 65535 + 1
            add.rule.cidr.address = "198.18.%d.0" % (i // 65535)
            add.rule.cidr.mask_size = 24
        answer = client.send(messages)
        assert all(m.message_0.response.status.status for m in answer.messages)


def leave_before_the_answer(endpoint, seconds, counter):
    """Connects, asks for every security group in full, and leaves at once; again and again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context = zmq.Context()
    context.setsockopt(zmq.MAX_SOCKETS, 60000)
    payload = request_bytes(lambda r: setattr(r, "sg_details", ""))
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        try:
            sock = context.socket(zmq.DEALER)
        except zmq.ZMQError:  # out of descriptors until ZeroMQ's reaper closes the last ones
            time.sleep(0.01)
            continue
        sock.setsockopt(zmq.LINGER, 1000)  # long enough for the request to leave
        sock.connect(endpoint)
        sock.send_multipart([b"", payload])
        sock.send_multipart([b"", b"\xff garbage"])
        sock.close()
        sent += 1
    context.destroy(linger=1000)
    counter.value = sent


def ask_politely(endpoint, seconds, latencies):
    """A well-behaved client: one small request at a time, each waited for (up to 300 s)."""
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        sock.send(request_bytes(lambda r: setattr(r, "nic_list", True)))
        if not sock.poll(300000):
            latencies.append(float("inf"))
            break
        sock.recv()
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    sock.close()
    context.term()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class ApiAbuseTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.client = RawClient(self.daemon.endpoint, timeout_ms=120000)
        self.addCleanup(self.client.close)

    def test_clients_that_leave_before_their_answer_do_not_starve_the_others(self):
        # One full listing of 30,000 rules takes the daemon ~0.1-0.3 s to build here; clients
        # that ask for it and leave at once send it hundreds of requests a second. A sanitizer
        # build pays several times for every byte it copies: its answers are made smaller.
        big_security_group(self.client, "big", 3000 if sanitized_build() else 30000)
        manager = multiprocessing.Manager()
        latencies = manager.list()
        sent = multiprocessing.Value("i", 0)
        attack_seconds = 4
        workers = [multiprocessing.Process(target=leave_before_the_answer,
                                           args=(self.daemon.endpoint, attack_seconds, sent))]
        workers += [multiprocessing.Process(target=ask_politely,
                                            args=(self.daemon.endpoint, attack_seconds, latencies))
                    for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(600)
            self.assertEqual(worker.exitcode, 0)
        self.assertGreater(sent.value, 50, "the attack did not happen")
        # Once they are gone, a new client is served at once, not after their backlog.
        started = time.monotonic()
        self.client.request(lambda r: setattr(r, "nic_list", True))
        after = time.monotonic() - started
        slowest = max(latencies)
        print("%d requests from clients that left; polite clients: %d answers, slowest %.2f s; "
              "a new client after the attack: %.2f s" % (sent.value, len(latencies), slowest, after))
        # Bounds far above what the daemon needs (milliseconds): without the cache of read
        # answers the polite clients waited 12-33 s and the new one 181 s for the backlog.
        self.assertLess(slowest, 10, "a polite client waited behind clients that had left")
        self.assertLess(after, 10, "the daemon was still working for clients that had left")

    def test_memory_goes_back_once_the_state_is_gone(self):
        if sanitized_build():
            self.skipTest("ASan and TSan replace glibc's allocator (and keep freed memory in "
                          "quarantine): what is measured here is glibc's, on release builds")
        pid = self.daemon.process.pid
        for _ in range(20):  # warm-up: the allocator's and ZeroMQ's first buffers
            self.client.request(lambda r: setattr(r, "nic_list", True))
        baseline = rss_kib(pid)
        big_security_group(self.client, "big", 60000)
        big_security_group(self.client, "web", 20)
        messages = message_pb2.Messages()
        for i in range(2000):
            message = messages.messages.add()
            message.revision = 0
            nic = message.message_0.request.nic_add
            nic.id = "vnic-%04d" % i
            nic.mac = "52:54:00:00:%02x:%02x" % (i >> 8, i & 0xff)
            nic.vni = 42
            nic.ip.append("198.18.%d.%d" % (i >> 8, i & 0xff))
            nic.security_group.append("web")
        self.client.send(messages)
        for _ in range(5):
            self.client.request(lambda r: setattr(r, "nic_details", ""))
        # The probe's phase: clients that ask for everything and leave (answers of 60,000 rules).
        sent = multiprocessing.Value("i", 0)
        attacker = multiprocessing.Process(target=leave_before_the_answer,
                                           args=(self.daemon.endpoint, 3, sent))
        attacker.start()
        peak = baseline
        while attacker.is_alive():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)
        self.assertEqual(attacker.exitcode, 0)
        self.client.request(lambda r: setattr(r, "nic_list", True))  # served after the backlog
        peak = max(peak, rss_kib(pid))
        messages = message_pb2.Messages()
        for i in range(2000):
            message = messages.messages.add()
            message.revision = 0
            message.message_0.request.nic_del = "vnic-%04d" % i
        self.client.send(messages)
        self.client.request(lambda r: setattr(r, "sg_del", "big"))
        self.client.request(lambda r: setattr(r, "sg_del", "web"))
        self.assertEqual(list(self.client.request(lambda r: setattr(r, "sg_list", True)).sg_list), [])
        # Memory is handed back while the API is idle: give it a moment of quiet. The slack: with
        # another test on the other core, 8 MiB more stayed (68,788 and 68,328 KiB against about
        # 60,100 in CI) while 1.5 MiB did alone; it is still 98% of a peak of 370-550 MiB.
        limit = baseline * 1.10 + 12 * 1024
        after = peak
        for _ in range(30):
            time.sleep(0.2)
            after = rss_kib(pid)
            if after <= limit:
                break
        print("RSS: %d KiB after warm-up, %d KiB at most with the state and %d clients that "
              "left, %d KiB once it is gone" % (baseline, peak, sent.value, after))
        self.assertGreater(peak, baseline + 20 * 1024, "the state did not take memory")
        self.assertLessEqual(after, limit,
                             "RSS stayed at %d KiB against %d KiB before" % (after, baseline))

    def test_frames_over_the_limit_are_refused_or_cut_and_the_cli_says_so(self):
        # Over 64 MiB: read, and answered REJECTED.
        over = message_pb2.Messages()
        over.messages.add().revision = 0
        over.messages[0].message_0.message_id = "x" * ((64 << 20) + 1)
        answer = message_pb2.Messages()
        answer.ParseFromString(self.client.send_bytes(over.SerializeToString()))
        self.assertEqual(answer.messages[0].error.code, REJECTED)
        # Over 128 MiB: ZeroMQ closes the connection before the daemon allocates it, unanswered
        # (README, API); the daemon goes on serving.
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.daemon.endpoint)
        sock.send_multipart([b"", b"\x0a" + b"\x00" * (200 << 20)])
        self.assertEqual(sock.poll(3000), 0, "a 200 MiB frame got an answer")
        sock.close()
        context.term()
        self.assertTrue(self.client.request(lambda r: setattr(r, "nic_list", True)).status.status)
        # The CLI refuses to send what the daemon cannot take, and says why, instead of waiting.
        with tempfile.NamedTemporaryFile("w", suffix=".req", dir=self.tmp.name, delete=False) as f:
            line = 'messages { revision: 0 message_0 { request { sg_member_add { sg_id: "sg" ' \
                   'member: "198.18.0.%d" } } message_id: "%s" } }\n'
            for i in range(70000):
                f.write(line % (i % 250, "p" * 1000))
        result = subprocess.run([BUTTERFLY, "-e", self.daemon.endpoint, "-t", "30", "request",
                                 f.name], capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("over butterflyd's limit of 64 MiB per request", result.stderr)
        self.assertIn("nothing was sent", result.stderr)
        self.assertEqual(list(self.client.request(lambda r: setattr(r, "sg_list", True)).sg_list), [])

    def test_text_that_is_not_utf8_and_unsafe_ids_are_refused(self):
        # The bytes of the probe: an id that is not UTF-8 became a socket file with those bytes.
        messages = message_pb2.Messages()
        message = messages.messages.add()
        message.revision = 0
        nic = message.message_0.request.nic_add
        nic.id = "ZZZZZ"
        nic.mac = "52:54:00:00:00:01"
        nic.vni = 42
        nic.type = 1  # TAP
        # Python's protobuf refuses to build such a string: put the bytes into the frame.
        raw = messages.SerializeToString().replace(b"ZZZZZ", b"\xff\xfeFPZ")
        answer = self.client.send_bytes(raw)
        decoded = message_pb2.Messages()
        decoded.ParseFromString(answer)  # the answer itself is valid UTF-8 throughout
        status = decoded.messages[0].message_0.response.status
        self.assertFalse(status.status)
        self.assertIn("is not valid UTF-8", status.error.description)
        self.assertEqual(os.listdir(self.daemon.socket_dir) if os.path.isdir(self.daemon.socket_dir)
                         else [], [])
        for bad in ["-rf", "*", "a;b", "~root", "$(id)", "..", ".x"]:
            result = self.run_cli("nic", "add", "--id=" + bad, "--mac", "52:54:00:00:00:01",
                                  "--vni", "42", "--type", "tap")
            self.assertEqual(result.returncode, 1, bad)
            self.assertIn("1-255 characters from A-Z a-z 0-9 _ - . :", result.stderr)
            result = self.run_cli("sg", "add", "--", bad)
            self.assertEqual(result.returncode, 1, bad)
        self.assertEqual(self.ok("--json", "nic", "list").strip(), "[]")
        self.assertEqual(self.ok("--json", "sg", "list").strip(), "[]")


class ApiAbuseOverTcpTest(DaemonTestCase):
    daemon_args = None

    def test_clients_that_never_read_or_leave_mid_request_harm_no_one(self):
        port = free_tcp_port()
        daemon = self.start_daemon(endpoint="tcp://127.0.0.1:%d" % port, args=["--no-dataplane"])
        client = RawClient(daemon.endpoint, timeout_ms=30000)
        self.addCleanup(client.close)
        big_security_group(client, "sg", 2000)  # answers of ~60 KB
        context = zmq.Context()
        self.addCleanup(context.destroy, 0)
        # Sends 3,000 requests and never reads: its answers pile up until ZeroMQ's bound (1,000
        # per connection), then are dropped, never waited for.
        deaf = context.socket(zmq.DEALER)
        deaf.setsockopt(zmq.RCVHWM, 1)
        deaf.setsockopt(zmq.RCVBUF, 4096)
        deaf.connect(daemon.endpoint)
        payload = request_bytes(lambda r: setattr(r, "sg_details", ""))
        for _ in range(3000):
            deaf.send_multipart([b"", payload])
        # Clients that leave in the middle of a request: a ZMTP greeting cut short, a frame that
        # announces 10 MB and brings 1 KB, garbage instead of a greeting.
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16 + b"\x00" + \
            b"\x00" * 31
        halves = [greeting[:20], greeting + b"\x06\x00\x00\x00\x00\x00\x98\x96\x80" + b"x" * 1024,
                  b"GET / HTTP/1.1\r\n\r\n" * 100]
        for i in range(30):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                raw.sendall(halves[i % 3])
        # Meanwhile, polite clients are served, each answer to its own question.
        answered = 0
        for i in range(50):
            messages = message_pb2.Messages()
            message = messages.messages.add()
            message.revision = 0
            message.message_0.message_id = "polite-%d" % i
            message.message_0.request.sg_member_list = "sg"
            answer = client.send(messages)
            self.assertEqual(answer.messages[0].message_0.message_id, "polite-%d" % i)
            answered += 1
        self.assertEqual(answered, 50)
        self.assertIsNone(daemon.process.poll(), "butterflyd died")
        deaf.close(linger=0)


if __name__ == "__main__":
    unittest.main()
