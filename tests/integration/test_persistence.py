"""The API state is durable: it survives kill -9, torn journals are cut back to an intact prefix,
unreadable state files stop the daemon, and a change the journal could not store is never
acknowledged.

The random choices (when to kill, where to cut) print their seed; rerun one with
BUTTERFLY_TEST_SEED=<seed>.
"""
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import zmq

from harness import BUTTERFLYD, Daemon, cli, message_pb2

CLIENTS = 4
CHANGES = 10000  # in total, over all clients
HEADER_BYTES = 16
# The last client sends its changes in frames of this many: over the daemon's 16 KiB threshold,
# so they are journaled ahead of being applied (src/api/journal_recorder.h), with the small
# frames of the other clients received at the same time.
BATCH = 400
FRAME_RECORD = b"\0\1"
REFUSAL_RECORD = b"\0\2"


def journal_records(data):
    """[(end offset, payload)] of the whole records of a journal (the framing of
    src/core/state_journal.h; checksums are the daemon's business, lengths are enough here)."""
    records = []
    at = HEADER_BYTES
    while at + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, at)
        if length == 0 or at + 8 + length > len(data):
            break
        records.append((at + 8 + length, data[at + 8:at + 8 + length]))
        at += 8 + length
    return records


def refused_by_design(request):
    """The requests planned_request makes invalid: their ids say so."""
    kind = request_kind(request)
    return (kind == "nic_add" and "refused" in request.nic_add.id) or \
        (kind == "sg_member_add" and "refused" in request.sg_member_add.sg_id)


def replayed_requests(payloads):
    """The requests a daemon replays from these record payloads, in order: plain requests, and the
    messages of frames journaled ahead but those a refusal record lists (every message of these
    streams is a state change)."""
    skip = {}
    for n, payload in enumerate(payloads):
        if payload.startswith(REFUSAL_RECORD):
            values = struct.unpack_from("<%dI" % ((len(payload) - 2) // 4), payload, 2)
            skip[n - values[0]] = set(values[1:])
    requests = []
    for n, payload in enumerate(payloads):
        if payload.startswith(FRAME_RECORD):
            frame = message_pb2.Messages()
            frame.ParseFromString(payload[2:])
            requests += [m.message_0.request for i, m in enumerate(frame.messages)
                         if i not in skip.get(n, ())]
        elif not payload.startswith(REFUSAL_RECORD):
            request = message_pb2.MessageV0.Request()
            request.ParseFromString(payload)
            requests.append(request)
    return requests


def rule_key(rule):
    return (rule.direction, rule.protocol,
            rule.port_start if rule.HasField("port_start") else None,
            rule.port_end if rule.HasField("port_end") else None,
            rule.cidr.address if rule.HasField("cidr") else None,
            rule.cidr.mask_size if rule.HasField("cidr") else None,
            rule.security_group)


def request_kind(request):
    return request.ListFields()[0][0].name


def nic_key(nic):
    return (nic.mac, nic.vni, tuple(nic.ip), tuple(nic.security_group))


class State:
    """The model as plain Python values: what a dump shows, or what requests should have built."""

    def __init__(self):
        self.nics = {}
        self.sgs = {}  # id -> (set of rule keys, set of members)

    def sg(self, sg_id):
        return self.sgs.setdefault(sg_id, (set(), set()))

    def apply(self, request):
        kind = request_kind(request)
        if kind == "nic_add":
            self.nics[request.nic_add.id] = nic_key(request.nic_add)
        elif kind == "sg_add":
            self.sgs[request.sg_add.id] = ({rule_key(r) for r in request.sg_add.rule},
                                           set(request.sg_add.member))
        elif kind == "sg_rule_add":
            self.sg(request.sg_rule_add.sg_id)[0].add(rule_key(request.sg_rule_add.rule))
        elif kind == "sg_member_add":
            self.sg(request.sg_member_add.sg_id)[1].add(request.sg_member_add.member)
        else:
            raise AssertionError("unexpected request in the journal: %s" % kind)

    def __eq__(self, other):
        return self.nics == other.nics and self.sgs == other.sgs

    def __repr__(self):
        return "State(%d nics, %d sgs)" % (len(self.nics), len(self.sgs))


def fetch_state(endpoint):
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        batch = message_pb2.Messages()
        for field in ("nic_details", "sg_details"):
            message = batch.messages.add()
            message.revision = 0
            setattr(message.message_0.request, field, "")
        sock.send(batch.SerializeToString())
        if not sock.poll(10000):
            raise AssertionError("no answer to the dump")
        answer = message_pb2.Messages()
        answer.ParseFromString(sock.recv())
    finally:
        sock.close()
        context.term()
    state = State()
    for nic in answer.messages[0].message_0.response.nic_details:
        state.nics[nic.id] = nic_key(nic)
    for sg in answer.messages[1].message_0.response.sg_details:
        state.sgs[sg.id] = ({rule_key(r) for r in sg.rule}, set(sg.member))
    return state


def planned_request(client, i):
    """The i-th request of a client: a valid nic_add, sg_rule_add or sg_member_add, or (one in
    five) an invalid one the daemon must refuse. Returns (request, expected to succeed)."""
    request = message_pb2.MessageV0.Request()
    kind = i % 10
    if kind < 4:
        nic = request.nic_add
        nic.id = "c%d-nic%d" % (client, i)
        nic.mac = "52:54:%02x:%02x:%02x:%02x" % (client, i >> 16 & 255, i >> 8 & 255, i & 255)
        nic.vni = 1 + i % 1000
        nic.ip.append("10.%d.%d.%d" % (client, i >> 8 & 255, i & 255))
        nic.security_group.append("c%d-sg%d" % (client, i % 5))
        return request, True
    if kind < 6:
        add = request.sg_rule_add
        add.sg_id = "c%d-sg%d" % (client, i % 5)
        add.rule.direction = i % 2
        add.rule.protocol = 6
        add.rule.port_start = add.rule.port_end = 1 + i % 60000
        add.rule.cidr.address = "172.%d.%d.%d" % (16 + client, i >> 8 & 255, i & 255)
        add.rule.cidr.mask_size = 32
        return request, True
    if kind < 8:
        add = request.sg_member_add
        add.sg_id = "c%d-sg%d" % (client, i % 5)
        add.member = "192.%d.%d.%d" % (client, i >> 8 & 255, i & 255)
        return request, True
    if kind == 8:
        nic = request.nic_add
        nic.id = "c%d-refused%d" % (client, i)
        nic.mac = "52:54:00:00:00:01"
        nic.vni = 1 << 24  # VNIs are below 2^24
        return request, False
    add = request.sg_member_add
    add.sg_id = "c%d-refused-sg%d" % (client, i)  # would be created by a valid member_add
    add.member = "300.0.0.%d" % (i % 256)
    return request, False


class StreamClient:
    """Sends its planned requests one at a time from `next` on, and sorts them by answer:
    acknowledged, refused, or unknown (the daemon died before answering)."""

    def __init__(self, client, count, batch=1, pause=0.0):
        self.client = client
        self.count = count
        self.batch = batch  # requests per frame
        self.pause = pause  # seconds between frames
        self.per_run = None  # at most this many requests per run
        self.next = 0
        self.acked = []
        self.refused = []
        self.unknown = []
        self.surprises = []

    def run(self, endpoint, answered, answer_timeout_ms):
        """`answered`: [count, lock] shared by the clients of one run. A request unanswered after
        `answer_timeout_ms` is unknown and ends the run (the daemon is taken to be dead)."""
        context = zmq.Context()
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        try:
            sent = 0
            while self.next < self.count and (self.per_run is None or sent < self.per_run):
                sent += self.batch
                planned = [planned_request(self.client, i)
                           for i in range(self.next, min(self.count, self.next + self.batch))]
                batch = message_pb2.Messages()
                for request, _ in planned:
                    message = batch.messages.add()
                    message.revision = 0
                    message.message_0.request.CopyFrom(request)
                sock.send(batch.SerializeToString())
                if not sock.poll(answer_timeout_ms):
                    self.unknown += [request for request, _ in planned]
                    self.next += len(planned)
                    return
                answer = message_pb2.Messages()
                answer.ParseFromString(sock.recv())
                for (request, valid), message in zip(planned, answer.messages):
                    ok = message.message_0.response.status.status
                    (self.acked if ok else self.refused).append(request)
                    if ok != valid:
                        self.surprises.append((request, answer))
                if len(answer.messages) != len(planned):
                    self.surprises.append((batch, answer))
                self.next += len(planned)
                with answered[1]:
                    answered[0] += len(planned)
                time.sleep(self.pause)
        finally:
            sock.close()
            context.term()


class PersistenceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="butterfly-persist-")
        self.addCleanup(self.tmp.cleanup)
        self.seed = int(os.environ.get("BUTTERFLY_TEST_SEED", time.time_ns() % 1000000))
        print("\n%s: seed %d" % (self.id(), self.seed), file=sys.stderr)
        self.random = random.Random(self.seed)

    def path(self, *parts):
        return os.path.join(self.tmp.name, *parts)

    def start(self, name, state_file, wait=True, dataplane=True):
        # The change streams test the journal: 4,000 vhost-user vnics would also exceed what one
        # process's DPDK vhost library serves (1,023 sockets), so they run without the dataplane.
        args = () if dataplane else ("--no-dataplane",)
        daemon = Daemon(self.tmp.name, name=name, state_file=state_file, args=args)
        self.addCleanup(daemon.stop)
        daemon.start(wait=wait)
        return daemon

    def assert_holds(self, state, clients, complete):
        """Every acknowledged change is in `state`, no refused one is, and nothing in it was never
        sent. With `complete`, nothing may be unknown."""
        sent = State()
        for client in clients:
            for request in client.acked + client.unknown:
                sent.apply(request)
        for client in clients:
            self.assertEqual(client.surprises, [], "answers contradict the plan")
            if complete:
                self.assertEqual(client.unknown, [])
            for request in client.acked:
                kind = request_kind(request)
                if kind == "nic_add":
                    self.assertEqual(state.nics.get(request.nic_add.id), nic_key(request.nic_add))
                elif kind == "sg_rule_add":
                    rules = state.sgs.get(request.sg_rule_add.sg_id, (set(), set()))[0]
                    self.assertIn(rule_key(request.sg_rule_add.rule), rules)
                else:
                    members = state.sgs.get(request.sg_member_add.sg_id, (set(), set()))[1]
                    self.assertIn(request.sg_member_add.member, members)
            for request in client.refused:
                if request.HasField("nic_add"):
                    self.assertNotIn(request.nic_add.id, state.nics)
                else:
                    self.assertNotIn(request.sg_member_add.sg_id, state.sgs)
        self.assertLessEqual(set(state.nics), set(sent.nics), "nics nobody sent")
        self.assertLessEqual(set(state.sgs), set(sent.sgs), "groups nobody sent")
        for sg_id, (rules, members) in state.sgs.items():
            self.assertLessEqual(rules, sent.sgs[sg_id][0])
            self.assertLessEqual(members, sent.sgs[sg_id][1])

    def stream(self, endpoint, clients, kill_after=None, daemon=None):
        """Runs the clients from where they stopped; with kill_after, SIGKILLs the daemon once
        that many answers have come back in this run."""
        answered = [0, threading.Lock()]
        # A daemon about to be killed is given up on quickly; a live one (perhaps an ASan build
        # sharing 2 cores with other tests) is waited for: only a hang should fail the test.
        answer_timeout_ms = 2000 if kill_after is not None else 60000
        threads = [threading.Thread(target=c.run, args=(endpoint, answered, answer_timeout_ms), daemon=True)
                   for c in clients]
        for thread in threads:
            thread.start()
        if kill_after is not None:
            deadline = time.time() + 60
            while answered[0] < kill_after and time.time() < deadline:
                time.sleep(0.001)
            daemon.kill()
        deadline = time.time() + 600
        for thread in threads:
            thread.join(max(0, deadline - time.time()))
            self.assertFalse(thread.is_alive(), "a client got no answer for 10 minutes")

    def test_kill_9_mid_stream_then_torn_journals(self):
        state_file = self.path("state", "state.journal")
        daemon = self.start("first", state_file, dataplane=False)
        clients = [StreamClient(c, CHANGES // CLIENTS) for c in range(CLIENTS - 1)]
        # Three of its frames go to the first daemon, spread over the run; the others to the second:
        # both the replay after the kill and the cut journals below then hold frames journaled
        # ahead, whatever the speed of the build.
        clients.append(StreamClient(CLIENTS - 1, CHANGES // CLIENTS, batch=BATCH, pause=0.3))
        clients[-1].per_run = 3 * BATCH
        kill_after = self.random.randint(CHANGES // 5, CHANGES // 2)
        started = time.time()
        self.stream(daemon.endpoint, clients, kill_after=kill_after, daemon=daemon)
        self.assertGreaterEqual(clients[-1].next, BATCH, "a frame went to the first daemon")
        acked = sum(len(c.acked) for c in clients)
        print("killed -9 after %d answers (%d acknowledged, %d unknown) in %.1f s" %
              (kill_after, acked, sum(len(c.unknown) for c in clients), time.time() - started),
              file=sys.stderr)

        second = self.start("second", state_file, dataplane=False)
        self.assertIn("state: restored", second.log())
        self.assert_holds(fetch_state(second.endpoint), clients, complete=False)

        # The rest of the stream (re-sending what had no answer: every call is idempotent).
        for client in clients:
            client.next -= len(client.unknown)
            client.unknown.clear()
            client.per_run = None
        self.stream(second.endpoint, clients)
        self.assertEqual(sum(len(c.acked) + len(c.refused) for c in clients), CHANGES)
        second.kill()
        print("10,000 changes in %.1f s" % (time.time() - started), file=sys.stderr)
        # As the kill left it: the snapshot written at the second start, and the changes after.
        with open(state_file, "rb") as f:
            journal = f.read()

        third = self.start("third", state_file, dataplane=False)
        final = fetch_state(third.endpoint)
        self.assert_holds(final, clients, complete=True)
        self.assertEqual(len(final.nics), CHANGES * 4 // 10)
        third.stop()

        # That journal cut at random offsets: the daemon starts on the intact records before the
        # cut, exactly, and says what it dropped.
        records = journal_records(journal)
        end = records[-1][0]
        self.assertEqual(journal[end:], bytes(len(journal) - end), "zeroed space after the records")
        payloads = [payload for _, payload in records]
        # Each refusal record lists exactly the invalid messages of its frame.
        listed = {}
        for n, payload in enumerate(payloads):
            if payload.startswith(REFUSAL_RECORD):
                values = struct.unpack_from("<%dI" % ((len(payload) - 2) // 4), payload, 2)
                listed[n - values[0]] = set(values[1:])
        for n, payload in enumerate(payloads):
            if payload.startswith(FRAME_RECORD):
                frame = message_pb2.Messages()
                frame.ParseFromString(payload[2:])
                invalid = {i for i, m in enumerate(frame.messages)
                           if refused_by_design(m.message_0.request)}
                self.assertEqual(listed.get(n, set()), invalid, "refusals of record %d" % (n + 1))
        # Cuts inside the records, one in the last record, one in the zeroed space.
        offsets = sorted(self.random.sample(range(HEADER_BYTES, end), 6)) + [end - 1, end + 1]
        for n, offset in enumerate(offsets):
            with self.subTest(offset=offset):
                cut_file = self.path("cut%d" % n, "state.journal")
                os.makedirs(os.path.dirname(cut_file))
                with open(cut_file, "wb") as f:
                    f.write(journal[:offset])
                expected = State()
                kept = [payload for end, payload in records if end <= offset]
                # A frame whose refusal record was cut off is replayed whole: its invalid
                # messages are refused again.
                for request in replayed_requests(kept):
                    if not refused_by_design(request):
                        expected.apply(request)
                intact = records[len(kept) - 1][0] if kept else HEADER_BYTES
                daemon = self.start("cut%d" % n, cut_file, dataplane=False)
                self.assertEqual(fetch_state(daemon.endpoint), expected)
                if offset > intact:
                    self.assertIn("dropped the last %d bytes from offset %d" % (offset - intact, intact),
                                  daemon.log())
                    self.assertIn("restoring the %d intact record(s)" % len(kept), daemon.log())
                daemon.stop()
        kinds = {}
        for payload in payloads:
            kind = ("frame journaled ahead" if payload.startswith(FRAME_RECORD) else
                    "refusals" if payload.startswith(REFUSAL_RECORD) else None)
            if kind is None:
                request = message_pb2.MessageV0.Request()
                request.ParseFromString(payload)
                kind = request_kind(request)
            kinds[kind] = kinds.get(kind, 0) + 1
        print("journal of %d records %s (%d bytes, then zeros to %d) cut at %s" %
              (len(records), kinds, end, len(journal), offsets), file=sys.stderr)
        self.assertIn("frame journaled ahead", kinds, "the batches were journaled ahead")

    def test_restart_keeps_client_mode_vnics_and_their_sockets(self):
        state_file = self.path("state.journal")
        daemon = self.start("host", state_file)
        qemu_socket = self.path("qemu-vm1.sock")
        for args in (["nic", "add", "--id", "vm1", "--mac", "52:54:00:00:00:01", "--vni", "5",
                      "--type", "vhost-client", "--path", qemu_socket, "--sg", "web"],
                     ["nic", "add", "--id", "vm2", "--mac", "52:54:00:00:00:02", "--vni", "5"],
                     ["sg", "rule", "add", "web", "--ip-proto", "tcp", "--port", "80", "--cidr",
                      "0.0.0.0/0"]):
            self.assertEqual(cli(args, daemon.endpoint).returncode, 0, args)
        before = cli(["dump"], daemon.endpoint).stdout
        self.assertEqual(daemon.stop(), 0)
        daemon = self.start("host", state_file)  # same socket directory
        self.assertEqual(cli(["dump"], daemon.endpoint).stdout, before)
        details = cli(["--json", "nic", "details", "vm1"], daemon.endpoint).stdout
        self.assertIn(qemu_socket, details)
        self.assertIn("vhost-client", details)

    def test_missing_state_directory_is_created_private(self):
        state_file = self.path("var", "lib", "butterfly", "state.journal")
        daemon = self.start("first", state_file, dataplane=False)
        self.assertEqual(os.stat(os.path.dirname(state_file)).st_mode & 0o777, 0o700)
        self.assertIn("no state file at %s: starting empty" % state_file, daemon.log())

    def test_unreadable_state_file_stops_the_daemon_with_exit_2(self):
        cases = {
            "garbage": (b"vnic_1 52:54:00:00:00:01\n", "is not a Butterfly state journal"),
            "empty": (b"", "is not a Butterfly state journal"),
            "bad-header": (b"BFJOURNL\x01\x00\x00\x00\x00\x00\x00\x00", "header is corrupt"),
            "directory": (None, "Is a directory"),
        }
        for name, (content, expected) in cases.items():
            with self.subTest(name):
                path = self.path(name, "state.journal")
                os.makedirs(path if content is None else os.path.dirname(path))
                if content is not None:
                    with open(path, "wb") as f:
                        f.write(content)
                daemon = Daemon(self.tmp.name, name=name, state_file=path)
                result = subprocess.run(daemon.command(), capture_output=True, text=True, timeout=20)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(path, result.stderr)
                self.assertIn(expected, result.stderr)
                self.assertIn("does not start on an empty state", result.stderr)
                if content is not None:
                    with open(path, "rb") as f:
                        self.assertEqual(f.read(), content, "the file is never replaced")

    def test_state_file_in_use_by_another_daemon_is_refused(self):
        state_file = self.path("state.journal")
        self.start("first", state_file, dataplane=False)
        second = Daemon(self.tmp.name, name="second", state_file=state_file)
        result = subprocess.run(second.command(), capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 2)
        self.assertIn("is in use by another butterflyd", result.stderr)

    def test_signals_during_the_state_replay_neither_kill_nor_lose_it(self):
        """systemctl reload or stop while a big journal replays: SIGHUP does not kill the daemon
        (its default action would), SIGTERM stops it cleanly once the step in progress is done,
        and the state is whole at the next start."""
        state_file = self.path("state.journal")
        daemon = self.start("first", state_file, dataplane=False)
        context = zmq.Context()
        self.addCleanup(context.term)
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        self.addCleanup(sock.close)
        sock.connect(daemon.endpoint)
        vnics = 40000  # a replay of a few hundred ms: the signals land during it
        for b in range(vnics // 1000):
            batch = message_pb2.Messages()
            for i in range(1000):
                message = batch.messages.add()
                message.revision = 0
                nic = message.message_0.request.nic_add
                nic.id, nic.mac, nic.vni = "vnic_%d_%d" % (b, i), "52:54:00:00:01:01", 1 + i
            sock.send(batch.SerializeToString())
            self.assertTrue(sock.poll(60000), "no answer to a batch")
            sock.recv()
        self.assertEqual(daemon.stop(), 0)

        replaying = self.start("second", state_file, wait=False, dataplane=False)
        deadline = time.time() + 60
        while "state: replaying" not in replaying.log() and replaying.process.poll() is None:
            self.assertLess(time.time(), deadline, replaying.log())
            time.sleep(0.001)
        replaying.process.send_signal(signal.SIGHUP)
        replaying.process.send_signal(signal.SIGTERM)
        self.assertEqual(replaying.process.wait(60), 0, replaying.log())
        log = replaying.log()
        self.assertIn("butterflyd stopped during start-up (signal)", log)
        self.assertNotIn("api: listening", log, "the API opened after the stop was asked for")

        restarted = self.start("third", state_file, dataplane=False)
        self.assertEqual(len(fetch_state(restarted.endpoint).nics), vnics)

    def test_change_the_journal_cannot_store_is_not_acknowledged(self):
        """The daemon runs with a file size limit (as a full disk would refuse writes): the change
        that does not fit is answered INTERNAL_ERROR; once space is back the journal is rewritten
        from memory and a restart restores what the daemon served."""
        state_file = self.path("state.journal")
        endpoint = "ipc://" + self.path("limited.api")
        limit = 4096

        def limit_file_size():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        # Logs go to a pipe, which the limit does not cover.
        process = subprocess.Popen(
            [BUTTERFLYD, "--no-syslog", "--no-dataplane", "--state-file", state_file, "-e",
             endpoint, "-s", self.path("sockets"), "-l", "info"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limit_file_size)
        self.addCleanup(process.stdout.close)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        log = []
        reader = threading.Thread(target=lambda: log.extend(process.stdout), daemon=True)
        reader.start()
        for _ in range(200):
            if cli(["status"], endpoint, timeout=0.5).returncode == 0:
                break
        acked = 0
        refused = None
        for i in range(200):
            result = cli(["sg", "add", "sg-%03d-%s" % (i, "x" * 40)], endpoint)
            if result.returncode != 0:
                refused = (i, result)
                break
            acked += 1
        self.assertIsNotNone(refused, "the journal never reached the limit")
        self.assertGreater(acked, 10)
        self.assertEqual(refused[1].returncode, 1)
        self.assertIn("INTERNAL_ERROR", refused[1].stderr)
        self.assertGreaterEqual(os.path.getsize(state_file), limit - 200)  # zeros, then records
        self.assertEqual(cli(["sg", "list"], endpoint).returncode, 0, "reads still work")

        resource.prlimit(process.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.assertEqual(cli(["sg", "add", "sg-after"], endpoint).returncode, 0)
        before = cli(["dump"], endpoint).stdout
        self.assertEqual(cli(["shutdown"], endpoint).returncode, 0)
        self.assertEqual(process.wait(10), 0)
        reader.join(5)
        text = b"".join(log).decode(errors="replace")
        self.assertIn("could not make changes durable", text)
        self.assertIn("rewritten from the state in memory", text)

        daemon = self.start("restarted", state_file)
        self.assertEqual(cli(["dump"], daemon.endpoint).stdout, before)
        self.assertIn("sg-after", before)


if __name__ == "__main__":
    unittest.main()
