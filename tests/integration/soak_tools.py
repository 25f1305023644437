"""The processes of the churn soak (test_soak.py), each in its own VM's namespace or beside the
daemon. Every record they keep is written as JSON when they finish; times are CLOCK_MONOTONIC,
one clock for every namespace of the machine.

  flow  ADDRESS PORT PPS STOP_FILE OUT      a paced UDP flow (sequence, send time), and its echoes
  sink  PORT STOP_FILE OUT [echo]           receives flows, records arrivals, echoes if asked
  cut   ENDPOINT ADDRESS PORT PPS SG NIC RULE_JSON STOP_FILE OUT
                                            a flow whose rule is removed and re-added again and again
  churn ENDPOINT DAEMON_PID WARMUP SECONDS RATE SEED VNICS_JSON OUT
                                            security-group changes at RATE per second
"""
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

PACKET = struct.Struct("!QdI")  # sequence, send time, phase
monotonic = time.monotonic


def paced(pps, stop):
    """Yields once per packet slot at `pps`; a sender that fell behind (descheduled) catches up
    with a short burst, never more than 50 ms of packets."""
    interval = 1.0 / pps
    next_slot = monotonic()
    while not stop():
        now = monotonic()
        if next_slot > now:
            time.sleep(next_slot - now)
        elif now - next_slot > 0.05:
            next_slot = now - 0.05
        yield
        next_slot += interval


def flow(address, port, pps, stop_file, out):
    """Sends (sequence, send time) to address:port from one source port: one flow, for the whole
    run. A thread records the echoes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.connect((address, port))
    echoes = []
    done = threading.Event()

    def receive():
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                data = sock.recv(64)
            except (socket.timeout, ConnectionRefusedError):
                continue
            echoes.append(PACKET.unpack_from(data)[0])

    receiver = threading.Thread(target=receive)
    receiver.start()
    sent = 0
    send_times = []
    for _ in paced(pps, lambda: os.path.exists(stop_file)):
        now = monotonic()
        try:
            sock.send(PACKET.pack(sent, now, 0))
        except ConnectionRefusedError:  # an ICMP error earlier on this socket: not expected here
            pass
        send_times.append(now)
        sent += 1
    time.sleep(1.0)  # the last echoes
    done.set()
    receiver.join()
    gaps = sorted(b - a for a, b in zip(send_times, send_times[1:]))
    with open(out, "w") as f:
        json.dump({"sent": sent, "echoed": len(set(echoes)), "send_gap_max": gaps[-1] if gaps else 0}, f)


def sink(port, stop_file, out, echo=False):
    """Records every datagram to `port` (arrival time, sequence, send time, phase) per sender
    port; echoes each back when asked. Finishes one second after stop_file appears."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("0.0.0.0", port))
    sock.setblocking(False)
    records = []
    stopping_at = None
    while stopping_at is None or monotonic() < stopping_at:
        if stopping_at is None and os.path.exists(stop_file):
            stopping_at = monotonic() + 1.0
        readable, _, _ = select.select([sock], [], [], 0.1)
        if not readable:
            continue
        while True:
            try:
                data, peer = sock.recvfrom(64)
            except BlockingIOError:
                break
            arrival = monotonic()
            sequence, sent_at, phase = PACKET.unpack_from(data)
            records.append((arrival, sequence, sent_at, phase))
            if echo:
                sock.sendto(data, peer)
    with open(out, "w") as f:
        json.dump(records, f)


class Api:
    """A ZeroMQ REQ client of the daemon's API (the original's wire format)."""

    def __init__(self, endpoint):
        import zmq
        sys.path.insert(0, os.path.join(os.environ["BUTTERFLY_BUILD_DIR"], "tests", "integration",
                                        "python_proto"))
        import message_0_pb2  # noqa: F401  (message_pb2 needs it)
        import message_pb2
        self.Messages = message_pb2.Messages
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)

    def send(self, fills):
        """One frame with one message per fill(request); returns the statuses' errors (None: ok)."""
        messages = self.Messages()
        for fill in fills:
            message = messages.messages.add()
            message.revision = 0
            fill(message.message_0.request)
        self.socket.send(messages.SerializeToString())
        if not self.socket.poll(30000):
            raise SystemExit("the daemon did not answer within 30 s")
        answer = self.Messages()
        answer.ParseFromString(self.socket.recv())
        return [None if m.message_0.response.status.status else
                m.message_0.response.status.error.description or "refused" for m in answer.messages]

    def one(self, fill):
        errors = self.send([fill])
        if errors[0]:
            raise SystemExit("API refused a change: %s" % errors[0])
        return errors


def fill_rule(rule, spec):
    rule.direction = 0  # inbound
    rule.protocol = spec["protocol"]
    if "ports" in spec:
        rule.port_start, rule.port_end = spec["ports"]
    if "cidr" in spec:
        address, mask = spec["cidr"].split("/")
        rule.cidr.address = address
        rule.cidr.mask_size = int(mask)
    else:
        rule.security_group = spec["members_of"]


def cut(endpoint, address, port, pps, sg, nic, rule_json, stop_file, out):
    """A flow to address:port whose rule (in `sg`) is removed, then added back, over and over.
    Each packet carries its phase: even while the rule is in, odd once its removal was
    acknowledged. Before re-adding the rule, sending pauses until the switch has read every packet
    sent (the vnic's packets_in): a packet of a removed phase is then never judged by the rule
    added back."""
    api = Api(endpoint)
    rule = json.loads(rule_json)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((address, port))
    state = {"phase": 0, "sending": True, "sent": 0}
    lock = threading.Lock()
    done = threading.Event()

    def send():
        for _ in paced(pps, done.is_set):
            with lock:
                if not state["sending"]:
                    continue
                sock.send(PACKET.pack(state["sent"], monotonic(), state["phase"]))
                state["sent"] += 1

    def packets_in():
        messages = api.Messages()
        message = messages.messages.add()
        message.revision = 0
        message.message_0.request.nic_stats = nic
        api.socket.send(messages.SerializeToString())
        answer = api.Messages()
        answer.ParseFromString(api.socket.recv())
        return answer.messages[0].message_0.response.nic_stats.packets_in

    sender = threading.Thread(target=send)
    sender.start()
    removals = []  # (phase, acknowledged at)
    while not os.path.exists(stop_file):
        time.sleep(0.3)
        asked = monotonic()
        api.one(lambda r: (setattr(r.sg_rule_del, "sg_id", sg), fill_rule(r.sg_rule_del.rule, rule)))
        acknowledged = monotonic()
        with lock:
            state["phase"] += 1
        removals.append((state["phase"], asked, acknowledged))
        time.sleep(0.3)
        with lock:
            state["sending"] = False
        # The sender may be inside its last send: wait for the lock again before counting.
        with lock:
            sent = state["sent"]
        deadline = monotonic() + 30
        while packets_in() < sent and monotonic() < deadline:
            time.sleep(0.01)
        api.one(lambda r: (setattr(r.sg_rule_add, "sg_id", sg), fill_rule(r.sg_rule_add.rule, rule)))
        with lock:
            state["phase"] += 1
            state["sending"] = True
    done.set()
    sender.join()
    with open(out, "w") as f:
        json.dump({"sent": state["sent"], "removals": removals}, f)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Churn:
    """Random security-group changes: rules in and out of the churn groups (by CIDR or by the
    members of another group), members in and out, the churn groups attached to and detached from
    the VMs' vnics (whose own groups always stay), other vnics added, re-addressed and removed.
    Every rule is inbound and on ports no test flow uses, so every version of the policy allows
    the VMs' flows. restore() takes it all back out."""

    GROUPS = ["churn-%d" % n for n in range(4)]

    def __init__(self, api, vnics, seed):
        self.api = api
        self.random = random.Random(seed)
        self.vnics = vnics  # id -> groups it always keeps
        self.rules = {g: [] for g in self.GROUPS}
        self.members = {g: set() for g in self.GROUPS}
        self.attached = {v: [] for v in vnics}
        self.others = {}  # id -> its addresses
        self.other_serial = 0

    def random_rule(self):
        r = self.random
        protocol = r.choice([6, 17, 1, -1])
        spec = {"protocol": protocol}
        if protocol in (6, 17):
            low = r.randrange(10000, 60000)
            spec["ports"] = (low, low + r.randrange(0, 100))
        if protocol == -1 or r.random() < 0.7:
            # -1 (every protocol) only from addresses no test VM uses.
            spec["cidr"] = "198.18.%d.0/24" % r.randrange(8, 200)
        else:
            spec["members_of"] = r.choice(self.GROUPS)
        return spec

    def change(self):
        """One change as a fill(request), applied to the model of what the daemon holds."""
        r = self.random
        kind = r.choice(["rule_add", "rule_add", "rule_del", "member_add", "member_del", "attach",
                         "other_add", "other_update", "other_del"])
        group = r.choice(self.GROUPS)
        # Groups stay small (as most do): past 50 rules or members, a change takes one out.
        if kind == "rule_add" and len(self.rules[group]) >= 50:
            kind = "rule_del"
        if kind == "member_add" and len(self.members[group]) >= 50:
            kind = "member_del"
        if kind == "rule_del" and self.rules[group]:
            spec = self.rules[group].pop(r.randrange(len(self.rules[group])))
            return lambda q: (setattr(q.sg_rule_del, "sg_id", group), fill_rule(q.sg_rule_del.rule, spec))
        if kind == "member_del" and self.members[group]:
            member = r.choice(sorted(self.members[group]))
            self.members[group].discard(member)
            return lambda q: (setattr(q.sg_member_del, "sg_id", group), setattr(q.sg_member_del, "member", member))
        if kind == "member_add":
            member = "198.18.%d.%d" % (r.randrange(8, 200), r.randrange(1, 255))
            self.members[group].add(member)
            return lambda q: (setattr(q.sg_member_add, "sg_id", group), setattr(q.sg_member_add, "member", member))
        if kind == "attach":
            vnic = r.choice(sorted(self.vnics))
            self.attached[vnic] = r.sample(self.GROUPS, r.randrange(0, len(self.GROUPS) + 1))
            groups = self.vnics[vnic] + self.attached[vnic]
            return lambda q: (setattr(q.nic_update, "id", vnic), q.nic_update.security_group.extend(groups))
        if kind == "other_add" and len(self.others) < 40:
            self.other_serial += 1
            vnic = "other-%d" % self.other_serial
            address = ["198.18.%d.%d" % (r.randrange(8, 200), r.randrange(1, 255))]
            self.others[vnic] = address
            mac = "52:54:00:7e:%02x:%02x" % (self.other_serial >> 8 & 255, self.other_serial & 255)
            groups = r.sample(self.GROUPS, 2)

            def fill(q):
                q.nic_add.id, q.nic_add.mac, q.nic_add.vni = vnic, mac, 42
                q.nic_add.ip.extend(address)
                q.nic_add.security_group.extend(groups)
            return fill
        if kind == "other_update" and self.others:
            vnic = r.choice(sorted(self.others))
            address = ["198.18.%d.%d" % (r.randrange(8, 200), r.randrange(1, 255))]
            self.others[vnic] = address
            return lambda q: (setattr(q.nic_update, "id", vnic), q.nic_update.ip.extend(address))
        if kind == "other_del" and self.others:
            vnic = r.choice(sorted(self.others))
            del self.others[vnic]
            return lambda q: setattr(q, "nic_del", vnic)
        spec = self.random_rule()
        if spec in self.rules[group]:
            return self.change()
        self.rules[group].append(spec)
        return lambda q: (setattr(q.sg_rule_add, "sg_id", group), fill_rule(q.sg_rule_add.rule, spec))

    def restore(self):
        """Back to the state before the first change; returns how many changes that took."""
        fills = []
        for vnic, groups in self.vnics.items():
            fills.append(lambda q, v=vnic, g=groups: (setattr(q.nic_update, "id", v),
                                                       q.nic_update.security_group.extend(g)))
            self.attached[vnic] = []
        for vnic in sorted(self.others):
            fills.append(lambda q, v=vnic: setattr(q, "nic_del", v))
        self.others.clear()
        for group in self.GROUPS:
            fills.append(lambda q, g=group: setattr(q, "sg_del", g))
            self.rules[group], self.members[group] = [], set()
        errors = self.api.send(fills)
        if any(errors):
            raise SystemExit("API refused a restoring change: %s" % [e for e in errors if e])
        return len(fills)


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def churn(endpoint, daemon_pid, warmup, seconds, rate, seed, vnics_json, out):
    """Warm-up: `warmup` seconds of changes, then everything restored and the daemon's RSS taken.
    Then `seconds` more of changes, restored again, RSS taken again. Changes go 10 to a frame, at
    most `rate` per second; RSS is sampled every second."""
    api = Api(endpoint)
    model = Churn(api, json.loads(vnics_json), seed)
    batch = 10
    started = monotonic()
    rss = []
    applied = 0
    marks = {}
    next_sample = started
    for name, duration in (("warmup", warmup), ("soak", seconds)):
        phase_start = monotonic()
        phase_cpu = cpu_seconds(daemon_pid)
        phase_applied = 0
        slot = phase_start
        while monotonic() - phase_start < duration:
            fills = [model.change() for _ in range(batch)]
            errors = api.send(fills)
            if any(errors):
                raise SystemExit("API refused a change: %s" % [e for e in errors if e])
            phase_applied += batch
            slot += batch / rate
            now = monotonic()
            if slot > now:
                time.sleep(slot - now)
            if now >= next_sample:
                rss.append((round(now - started, 1), rss_kib(daemon_pid)))
                next_sample += 1.0
        elapsed = monotonic() - phase_start
        daemon_cpu = (cpu_seconds(daemon_pid) - phase_cpu) / elapsed
        applied += phase_applied + model.restore()
        time.sleep(1.0)  # the deferred publications and the RCU frees of the restore
        marks[name] = {"changes": phase_applied, "seconds": elapsed, "rss_kib": rss_kib(daemon_pid),
                       "daemon_cpu": daemon_cpu}
    with open(out, "w") as f:
        json.dump({"marks": marks, "rss": rss, "applied": applied}, f)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "flow":
        flow(args[0], int(args[1]), float(args[2]), args[3], args[4])
    elif command == "sink":
        sink(int(args[0]), args[1], args[2], echo=len(args) > 3 and args[3] == "echo")
    elif command == "cut":
        cut(args[0], args[1], int(args[2]), float(args[3]), args[4], args[5], args[6], args[7], args[8])
    elif command == "churn":
        churn(args[0], int(args[1]), float(args[2]), float(args[3]), float(args[4]), int(args[5]),
              args[6], args[7])
    else:
        raise SystemExit(__doc__)
