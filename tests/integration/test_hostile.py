"""Hostile frames through the real pipeline: malformed and mutated frames from a VM
(a TAP vnic in a namespace) and from the underlay (VXLAN over a veth, net_af_packet) into a
running butterflyd. Checks that it stays alive and forwarding, that its counters add up exactly
(in = out + drops by reason, per vnic and per stage), and that nothing the receiving VM's
security group forbids reaches it (every arrival is captured and classified).

Three senders: a TAP VM, a vhost-user VM (testpmd) and the underlay. Frames: BUTTERFLY_HOSTILE_FRAMES
per sender, default 450,000 (the switch receives over 10^6 in all: the kernel drops some between a
packet socket and the switch, which counts what it received); `make hostile` sends 1,500,000 each.
A quarter of that against sanitizer builds."""
import json
import os
import re
import struct
import subprocess
import sys
import time

from harness import DaemonTestCase, sanitized_build
from netlab import NetLab
from test_vhost import TestpmdVm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hostile_frames as hf  # noqa: E402

VNI = 77
MAC_A = "52:54:00:00:4d:01"
MAC_B = "52:54:00:00:4d:02"
REMOTE_MACS = ["52:54:00:00:4e:%02x" % i for i in range(8)]


FRAMES = int(os.environ.get("BUTTERFLY_HOSTILE_FRAMES", "450000")) // (4 if sanitized_build() else 1)

# Sends the frames of a file (4-byte length, then the frame) from a packet socket; prints how many
# the kernel took and how many it refused (EMSGSIZE for a runt or a frame over the MTU, ENOBUFS).
SENDER = r"""
import errno, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
s.bind((sys.argv[1], 0))
data = open(sys.argv[2], "rb").read()
sent = refused = offset = 0
send = s.send
while offset < len(data):
    length = struct.unpack_from("!I", data, offset)[0]
    frame = data[offset + 4:offset + 4 + length]
    offset += 4 + length
    while True:
        try:
            send(frame)
            sent += 1
            break
        except OSError as e:
            if e.errno == errno.ENOBUFS:
                continue
            refused += 1
            break
print(sent, refused, flush=True)
"""

# Captures what arrives at the receiving VM's interface and classifies each frame; stops when the
# file argv[2] exists and nothing came for a while; prints a JSON summary.
RECEIVER = r"""
import json, os, socket, struct, sys
sys.path.insert(0, sys.argv[4])
import hostile_frames as hf
arp_senders = json.loads(sys.argv[3])
if arp_senders is not None:
    arp_senders = [(bytes.fromhex(m), socket.inet_aton(ip)) for m, ip in arp_senders]
classifier = hf.Classifier(arp_senders)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
s.bind((sys.argv[1], 0))
s.settimeout(0.5)
print("ready", flush=True)
captured = 0
while True:
    try:
        frame, address = s.recvfrom(65535)
    except socket.timeout:
        if os.path.exists(sys.argv[2]):
            break
        continue
    if address[2] == socket.PACKET_OUTGOING:
        continue
    captured += 1
    classifier.classify(frame)
packets, drops = struct.unpack("II", s.getsockopt(263, 6, 8))  # PACKET_STATISTICS
print(json.dumps({"captured": captured, "socket_drops": drops, "counts": classifier.counts,
                  "bypasses": classifier.bypasses}), flush=True)
"""


def softnet_drops():
    """Frames the kernel dropped on its input backlogs (all CPUs, all namespaces)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f)


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for frame in frames:
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)


def write_frames(path, frames):
    with open(path, "wb") as f:
        for frame in frames:
            f.write(len(frame).to_bytes(4, "big") + frame)


class HostileFramesTest(DaemonTestCase):
    daemon_args = None

    def setUp(self):
        super().setUp()
        self.lab = NetLab(self)

    # --- counters ---------------------------------------------------------------------------

    def snapshot(self, daemon, nics):
        stats = json.loads(self.ok("--json", "stats", endpoint=daemon.endpoint))
        self.assertEqual(len(stats["workers"]), 1)
        worker = stats["workers"][0]
        vnics = {nic: json.loads(self.ok("--json", "nic", "stats", nic, endpoint=daemon.endpoint)) for nic in nics}
        return {"stages": worker["stages"], "drops": worker["drops"], "vnics": vnics}

    def drained(self, daemon, nics):
        """The counters once they stop moving (the worker has handled every frame it received)."""
        previous = self.snapshot(daemon, nics)
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(1.0)
            now = self.snapshot(daemon, nics)
            if now == previous:
                return now
            previous = now
        self.fail("the counters still move after 120 s")

    @staticmethod
    def delta(after, before):
        stage = lambda name, field: after["stages"][name][field] - before["stages"][name][field]
        drops = {reason: after["drops"][reason] - before["drops"][reason] for reason in after["drops"]}
        vnics = {}
        for nic, stats in after["vnics"].items():
            old = before["vnics"][nic]
            vnics[nic] = {key: stats[key] - old[key] for key in ("packets_in", "packets_out")}
            vnics[nic]["drops"] = {r: stats["drops"].get(r, 0) - old["drops"].get(r, 0) for r in stats["drops"]}
        return stage, drops, vnics

    def check_stage_drops(self, stage, drops):
        """Every drop is some stage's: the stages' drops add up to the drops by reason."""
        names = ["underlay_rx", "vxlan_decap", "vnic_rx", "antispoof", "filter_egress", "l2_lookup", "vxlan_encap",
                 "underlay_tx", "handoff", "filter_ingress", "vnic_tx", "vtep"]
        by_stage = {name: stage(name, "drops") for name in names}
        self.assertEqual(sum(by_stage.values()), sum(drops.values()),
                         "stage drops %s vs drops by reason %s" % (by_stage, drops))

    # --- traffic ----------------------------------------------------------------------------

    def start_receiver(self, namespace, interface, arp_senders):
        stop = os.path.join(self.tmp.name, "stop-" + interface)
        receiver = self.lab.popen(namespace, ["/usr/bin/python3", "-c", RECEIVER, interface, stop,
                                              json.dumps(arp_senders), HERE],
                                  stdout=subprocess.PIPE, text=True)
        self.assertEqual(receiver.stdout.readline().strip(), "ready")
        return receiver, stop

    def finish_receiver(self, receiver, stop):
        open(stop, "w").close()
        return json.loads(receiver.communicate(timeout=120)[0].strip().splitlines()[-1])

    def send(self, namespace, interface, frames, name):
        path = os.path.join(self.tmp.name, name + ".frames")
        write_frames(path, frames)
        started = time.time()
        result = self.lab.run(namespace, ["/usr/bin/python3", "-c", SENDER, interface, path], timeout=900)
        sent, refused = map(int, result.stdout.split())
        os.unlink(path)
        return sent, refused, time.time() - started

    def check_arrivals(self, arrivals, delivered, backlog_drops):
        bypasses = {k: v for k, v in arrivals["counts"].items() if k.startswith("BYPASS")}
        self.assertEqual(bypasses, {}, "frames the policy forbids (or malformed) reached the VM: %s" %
                         arrivals["bypasses"])
        # Every frame that reached the VM's interface was classified: the capture socket lost
        # none, and between the TAP and it the kernel drops only on its input backlog (counted).
        self.assertEqual(arrivals["socket_drops"], 0)
        self.assertLessEqual(arrivals["captured"], delivered)
        self.assertLessEqual(delivered - arrivals["captured"], backlog_drops,
                             "captured %s vs packets_out %d" % (arrivals, delivered))
        self.assertGreater(arrivals["counts"].get("tcp80", 0), 0, "allowed frames arrive too")
        self.assertGreater(arrivals["counts"].get("udp53", 0), 0, "allowed IPv6 frames arrive too")

    def report(self, title, **figures):
        print("\n%s: %s" % (title, json.dumps(figures, sort_keys=True)), file=sys.stderr, flush=True)

    # --- tests ------------------------------------------------------------------------------

    def policy(self, daemon):
        self.ok("sg", "rule", "add", "rx", "--ip-proto", "tcp", "--port", str(hf.ALLOWED_TCP_PORT),
                "--cidr", hf.ALLOWED_V4 + "/32", endpoint=daemon.endpoint)
        self.ok("sg", "rule", "add", "rx", "--ip-proto", "udp", "--port", str(hf.ALLOWED_UDP6_PORT),
                "--cidr", hf.ALLOWED_V6 + "/128", endpoint=daemon.endpoint)
        self.ok("sg", "add", "tx", endpoint=daemon.endpoint)

    def tap_vm(self, daemon, suffix, mac, addresses, sg, extra=()):
        nic = self.lab.name(suffix)
        args = ["nic", "add", "--id", nic, "--mac", mac, "--vni", str(VNI), "--type", "tap", "--sg", sg]
        for address in addresses:
            args += ["--ip", address]
        self.ok(*(args + list(extra)), endpoint=daemon.endpoint)
        namespace = self.lab.netns(suffix)
        self.lab.move(nic, namespace, mtu=9000)
        return nic, namespace

    def stops_cleanly(self, daemon):
        """Exit code 0 on SIGTERM: against a sanitizer build, also no leak and no late report."""
        code = daemon.stop()
        self.assertEqual(code, 0, daemon.log()[-5000:])

    def still_forwards(self, daemon, ns_a, nic_a, ns_b, nic_b):
        """After the flood: the API answers, and a TCP connection the policy allows goes through."""
        self.assertIsNone(daemon.process.poll(), "butterflyd is alive")
        self.ok("status", endpoint=daemon.endpoint)
        self.lab.run(ns_a, ["ip", "addr", "add", hf.ALLOWED_V4 + "/24", "dev", nic_a])
        self.lab.run(ns_b, ["ip", "addr", "add", hf.RECEIVER_V4 + "/24", "dev", nic_b])
        self.lab.serve_tcp(ns_b, hf.RECEIVER_V4, hf.ALLOWED_TCP_PORT)
        self.lab.serve_tcp(ns_b, hf.RECEIVER_V4, 22)
        self.assertTrue(self.lab.tcp_request(ns_a, hf.RECEIVER_V4, hf.ALLOWED_TCP_PORT), "tcp/80 after the flood")
        self.assertFalse(self.lab.tcp_request(ns_a, hf.RECEIVER_V4, 22), "tcp/22 still refused")

    def test_frames_from_a_vm(self):
        """The sending VM is a TAP vnic: a packet socket in its namespace sends the frames."""
        daemon = self.start_daemon(args=["--dpdk-args", "--no-pci", "--workers", "1"])
        self.policy(daemon)
        nic_a, ns_a = self.tap_vm(daemon, "ha", MAC_A, [hf.ALLOWED_V4, hf.ALLOWED_V6], "tx", ["--enable-antispoof"])
        nic_b, ns_b = self.tap_vm(daemon, "hb", MAC_B, [hf.RECEIVER_V4, hf.RECEIVER_V6], "rx")
        frames = hf.Mutator(15, MAC_A, MAC_B, [MAC_B] + REMOTE_MACS).frames(FRAMES)
        self.flood_from_vm(daemon, nic_a, nic_b, ns_b, "from a TAP VM",
                           lambda: self.send(ns_a, nic_a, frames, "vm") + (len(frames),))
        self.still_forwards(daemon, ns_a, nic_a, ns_b, nic_b)
        self.stops_cleanly(daemon)

    def test_frames_from_a_vhost_vm(self):
        """The sending VM is a vhost-user vnic: testpmd forwards a capture of the frames (net_pcap)
        into its virtio port (9 KB jumbos become chained mbufs on the switch's side)."""
        daemon = self.start_daemon(args=["--dpdk-args", "--no-pci", "--workers", "1"])
        self.policy(daemon)
        nic_a = self.lab.name("hv")
        self.ok("nic", "add", "--id", nic_a, "--mac", MAC_A, "--vni", str(VNI), "--ip", hf.ALLOWED_V4, "--ip",
                hf.ALLOWED_V6, "--sg", "tx", "--enable-antispoof", endpoint=daemon.endpoint)
        nic_b, ns_b = self.tap_vm(daemon, "hb", MAC_B, [hf.RECEIVER_V4, hf.RECEIVER_V6], "rx")
        # Empty frames stay out: virtio cannot carry them (DPDK's vhost library discards a
        # descriptor with nothing after the virtio-net header before the switch sees it).
        frames = [f for f in hf.Mutator(16, MAC_A, MAC_B, [MAC_B] + REMOTE_MACS).frames(FRAMES) if f]
        capture = os.path.join(self.tmp.name, "vm.pcap")
        write_pcap(capture, frames)
        count = len(frames)
        del frames
        # Port 0 reads the capture, io forwarding sends it out of port 1, the virtio port (and
        # retries while the vhost ring is full).
        vm = TestpmdVm(self, os.path.join(daemon.socket_dir, "qemu-vhost-" + nic_a), MAC_A, "io",
                       ["--total-num-mbufs=65536", "--no-flush-rx"], pcap="rx_pcap=%s,tx_pcap=%s" % (
                           capture, os.path.join(self.tmp.name, "vm-out.pcap")))

        def send():
            started = time.time()
            vm.command("set fwd io retry")
            vm.command("set burst tx delay 20 retry 5000")
            vm.command("start")
            self.wait_link(daemon, nic_a)
            vm.port_rx_packets(port=0)
            deadline = time.time() + 600
            while vm.port_rx_packets(port=0) < count and time.time() < deadline:
                time.sleep(0.5)
            seconds = time.time() - started
            output = vm.finish()
            virtio = re.search(r"Forward statistics for port 1\s+-+\s+RX-packets:\s+\d+\s+RX-dropped:\s+\d+\s+"
                               r"RX-total:\s+\d+\s+TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)", output)
            self.assertTrue(virtio, output)
            return int(virtio.group(1)), int(virtio.group(2)), seconds, count

        sent, received = self.flood_from_vm(daemon, nic_a, nic_b, ns_b, "from a vhost VM", send)
        self.assertEqual(received, sent, "virtio loses nothing: the switch counts every frame the VM sent")
        self.assertIsNone(daemon.process.poll(), "butterflyd is alive")
        self.ok("status", endpoint=daemon.endpoint)
        self.stops_cleanly(daemon)

    def wait_link(self, daemon, nic):
        deadline = time.time() + 30
        while time.time() < deadline:
            details = json.loads(self.ok("--json", "nic", "details", nic, endpoint=daemon.endpoint))[0]
            if details["link"] == "connected":
                return
            time.sleep(0.1)
        self.fail("the vhost VM did not connect")

    def flood_from_vm(self, daemon, nic_a, nic_b, ns_b, title, send):
        """`send()` makes A send the frames; returns (sent, refused, seconds, generated)."""
        receiver, stop = self.start_receiver(ns_b, nic_b, [[MAC_A.replace(":", ""), hf.ALLOWED_V4]])
        before = self.drained(daemon, [nic_a, nic_b])
        backlog_drops = softnet_drops()
        sent, refused, seconds, generated = send()
        after = self.drained(daemon, [nic_a, nic_b])
        backlog_drops = softnet_drops() - backlog_drops
        arrivals = self.finish_receiver(receiver, stop)
        stage, drops, vnics = self.delta(after, before)
        a, b = vnics[nic_a], vnics[nic_b]
        self.report(title, generated=generated, sent=sent, refused=refused, seconds=round(seconds, 1),
                    received=a["packets_in"], delivered=b["packets_out"], drops=drops, arrivals=arrivals["counts"])
        self.assertGreater(a["packets_in"], generated // 2, "most frames reached the switch")
        # in = out + drops: A sent, B received, nothing else moved; every drop is A's or B's.
        self.assertEqual((a["packets_out"], b["packets_in"]), (0, 0))
        self.assertEqual(a["packets_in"], b["packets_out"] + sum(drops.values()), drops)
        for reason, count in drops.items():
            self.assertEqual(a["drops"][reason] + b["drops"][reason], count, reason)
        # Stage by stage, with no copies (B is the only other vnic of the VNI, no underlay).
        self.assertEqual(stage("vnic_rx", "packets"), a["packets_in"])
        self.assertEqual(stage("antispoof", "packets"), a["packets_in"])
        self.assertEqual(stage("filter_egress", "packets"), a["packets_in"] - stage("antispoof", "drops"))
        self.assertEqual(stage("l2_lookup", "packets"),
                         stage("filter_egress", "packets") - stage("filter_egress", "drops"))
        self.assertEqual(stage("filter_ingress", "packets"),
                         stage("l2_lookup", "packets") - stage("l2_lookup", "drops"))
        self.assertEqual(stage("vnic_tx", "packets"),
                         stage("filter_ingress", "packets") - stage("filter_ingress", "drops"))
        self.assertEqual(stage("vnic_tx", "packets") - stage("vnic_tx", "drops"), b["packets_out"])
        self.check_stage_drops(stage, drops)
        self.check_arrivals(arrivals, b["packets_out"], backlog_drops)
        return sent, a["packets_in"]

    def test_frames_from_the_underlay(self):
        end_a, end_x = self.lab.veth("ua", "ux")
        for end in (end_a, end_x):
            subprocess.run(["ip", "link", "set", end, "mtu", "9000"], check=True)
        with open("/sys/class/net/%s/address" % end_a) as f:
            vtep_mac = f.read().strip()
        daemon = self.start_daemon(args=["-i", "198.18.100.1", "--workers", "1", "--dpdk-args",
                                         "--no-pci --vdev=net_af_packet0,iface=%s,framecnt=8192" % end_a])
        self.policy(daemon)
        # B alone in the VNI (a flood has one target: no copies), and a peer instead of the
        # multicast group (no IGMP reports of our own in the counters).
        self.ok("vni", "peers", str(VNI), "198.18.100.250", endpoint=daemon.endpoint)
        nic_b, ns_b = self.tap_vm(daemon, "hb", MAC_B, [hf.RECEIVER_V4, hf.RECEIVER_V6], "rx")
        outside = self.lab.netns("ox")
        self.lab.move(end_x, outside, "198.18.100.9/24")
        outer_src_mac = self.lab.run(outside, ["cat", "/sys/class/net/%s/address" % end_x]).stdout.strip()
        frames = hf.underlay_frames(FRAMES, 15, VNI, VNI + 1, REMOTE_MACS, MAC_B, [MAC_A, MAC_B],
                                    hf.mac_bytes(outer_src_mac), hf.mac_bytes(vtep_mac), "198.18.100.9",
                                    "198.18.100.1")
        receiver, stop = self.start_receiver(ns_b, nic_b, None)
        before = self.drained(daemon, [nic_b])
        backlog_drops = softnet_drops()
        sent, refused, seconds = self.send(outside, end_x, frames, "underlay")
        after = self.drained(daemon, [nic_b])
        backlog_drops = softnet_drops() - backlog_drops
        arrivals = self.finish_receiver(receiver, stop)
        stage, drops, vnics = self.delta(after, before)
        b = vnics[nic_b]
        received = stage("underlay_rx", "packets")
        self.report("from the underlay", generated=len(frames), sent=sent, refused=refused,
                    seconds=round(seconds, 1), received=received, delivered=b["packets_out"], drops=drops,
                    vtep=stage("vtep", "packets"), arrivals=arrivals["counts"])
        self.assertGreater(received, len(frames) // 2, "most frames reached the switch")
        # in = out + drops, the VTEP's own ARP counted apart (answered or consumed).
        self.assertEqual(b["packets_in"], 0)
        self.assertEqual(received, b["packets_out"] + sum(drops.values()) + stage("vtep", "packets"), drops)
        self.assertLessEqual(stage("underlay_tx", "packets"), stage("vtep", "packets"), "only ARP replies")
        for reason, count in drops.items():
            self.assertLessEqual(b["drops"][reason], count, reason)
        self.assertEqual(received, stage("vtep", "packets") + stage("vxlan_decap", "packets") +
                         stage("vxlan_decap", "drops"))
        self.assertEqual(stage("filter_ingress", "packets"), stage("vxlan_decap", "packets"))
        self.assertEqual(stage("vnic_tx", "packets"),
                         stage("filter_ingress", "packets") - stage("filter_ingress", "drops"))
        self.assertEqual(stage("vnic_tx", "packets") - stage("vnic_tx", "drops"), b["packets_out"])
        self.check_stage_drops(stage, drops)
        self.check_arrivals(arrivals, b["packets_out"], backlog_drops)
        self.assertIsNone(daemon.process.poll(), "butterflyd is alive")
        self.ok("status", endpoint=daemon.endpoint)
        # Forwarding still works: a VM on this host, and the allowed flow from it to B.
        nic_a, ns_a = self.tap_vm(daemon, "ha", MAC_A, [hf.ALLOWED_V4], "tx")
        self.still_forwards(daemon, ns_a, nic_a, ns_b, nic_b)
        self.stops_cleanly(daemon)


if __name__ == "__main__":
    import unittest
    unittest.main()
