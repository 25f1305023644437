"""A MAC flood from the underlay in one VNI must not grow the learned FDB without bound nor evict
anything: a VNI learns at most --fdb-vni-max remote MACs, refuses (and counts) the rest, and local
vnics, static entries and another VNI's learned entries stay.

One butterflyd with an af_packet underlay on a veth whose other end is in a namespace that sends
it VXLAN frames. VNI 42 has two local TAP vnics that ping and talk TCP; VNI 43 has a local vnic, a
static remote MAC and learned remote MACs. The namespace then sends, as fast as a packet socket
can, VXLAN frames of VNI 42 from BUTTERFLY_FDB_FLOOD_MACS distinct inner source MACs (default
60,000; `make fdb-flood-test` runs 10^6)."""
import json
import os
import socket
import struct
import subprocess
import time
import unittest

from harness import DaemonTestCase
from netlab import NetLab

VNI_A = 42
VNI_B = 43
CAP = 2000
MACS = int(os.environ.get("BUTTERFLY_FDB_FLOOD_MACS", "60000"))
VNI_B_LEARNED = 20
OUR_VTEP = "198.18.100.1"
FLOODER_VTEP = "198.18.100.9"
MOVED_VTEP = "198.18.100.10"

# argv: interface, outer source MAC, outer source address, VNI, inner destination MAC, first
# source MAC (an integer), count. Frame i: a VXLAN packet from that address to OUR_VTEP whose inner
# frame comes from MAC first+i (locally administered, unicast) to the destination, with an
# EtherType nobody speaks (the receiving kernel drops it). Prints the frames sent and the seconds.
INJECT = r"""
import socket, struct, sys, time
interface, outer_src, outer_src_ip, vni, inner_dst = sys.argv[1:6]
first, count = int(sys.argv[6]), int(sys.argv[7])
def checksum(header):
    total = sum(struct.unpack('!10H', header))
    total = (total & 0xffff) + (total >> 16)
    total = (total & 0xffff) + (total >> 16)
    return struct.pack('!H', ~total & 0xffff)
inner_tail = b'\x88\xb5' + b'\x00' * 46
udp_length = 8 + 8 + 14 + len(inner_tail) - 2
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + udp_length, 0, 0, 64, 17, 0,
                 socket.inet_aton(outer_src_ip), socket.inet_aton('%s'))
ip = ip[:10] + checksum(ip) + ip[12:]
head = (b'\xff' * 6 + bytes.fromhex(outer_src) + b'\x08\x00' + ip +
        struct.pack('!HHHH', 49152, 4789, udp_length, 0) + struct.pack('!II', 0x08000000, int(vni) << 8) +
        bytes.fromhex(inner_dst))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((interface, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
start = time.time()
for i in range(count):
    frame = head + (first + i).to_bytes(6, 'big') + inner_tail
    while True:
        try:
            s.send(frame)
            break
        except (BlockingIOError, OSError):
            time.sleep(0.0005)
print(count, '%%.2f' %% (time.time() - start), flush=True)
""" % OUR_VTEP

FLOOD_FIRST_MAC = 0x0a0000000000
VNI_B_FIRST_MAC = 0x0a4300000000
STATIC_MAC = "0a:43:ff:00:00:01"


def mac_text(value):
    return ":".join("%02x" % b for b in value.to_bytes(6, "big"))


class FdbFloodTest(DaemonTestCase):
    daemon_args = None

    def setUp(self):
        super().setUp()
        self.lab = NetLab(self)

    def start(self, cap, ageing):
        end_a, self.end_x = self.lab.veth("ua", "ux")
        self.host = self.start_daemon(name="a", args=[
            "-i", OUR_VTEP, "--workers", "1", "--fdb-ageing", str(ageing), "--fdb-vni-max", str(cap),
            "--dpdk-args", "--no-pci --vdev=net_af_packet0,iface=%s" % end_a])
        self.outside = self.lab.netns("ox")
        self.lab.move(self.end_x, self.outside, FLOODER_VTEP + "/24")
        self.outer_mac = self.lab.run(self.outside, ["cat", "/sys/class/net/%s/address" % self.end_x]).stdout.strip()

    def vm(self, suffix, address, vni, last_byte):
        nic = self.lab.name(suffix)
        mac = "52:54:00:00:%02x:%02x" % (vni, last_byte)
        self.ok("nic", "add", "--id", nic, "--mac", mac, "--vni", str(vni), "--ip", address, "--type", "tap",
                "--bypass-filtering", endpoint=self.host.endpoint)
        namespace = self.lab.netns(suffix)
        self.lab.move(nic, namespace, address + "/24")
        return nic, namespace, mac

    def cli_json(self, *args):
        return json.loads(self.ok("--json", *args, endpoint=self.host.endpoint))

    def macs(self, vni, kind):
        return sorted(m["mac"] for m in self.cli_json("fdb", "list")["macs"] if m["vni"] == vni and m["kind"] == kind)

    def vtep_of(self, vni, mac):
        return [m["vtep"] for m in self.cli_json("fdb", "list")["macs"] if m["vni"] == vni and m["mac"] == mac]

    def inject(self, vni, inner_dst, first, count, timeout=60, vtep=FLOODER_VTEP):
        sent, seconds = self.lab.run(self.outside, [
            "/usr/bin/python3", "-c", INJECT, self.end_x, self.outer_mac.replace(":", ""), vtep, str(vni),
            inner_dst.replace(":", ""), str(first), str(count)], timeout=timeout).stdout.split()
        return int(sent), float(seconds)

    def decapsulated(self):
        return self.cli_json("stats")["workers"][0]["stages"]["vxlan_decap"]["packets"]

    def wait_for(self, predicate, seconds=10):
        deadline = time.time() + seconds
        while not predicate() and time.time() < deadline:
            time.sleep(0.2)
        return predicate()

    def test_a_mac_flood_in_one_vni_stops_at_its_cap_and_evicts_nothing(self):
        self.start(CAP, 3600)
        a1, ns_a1, mac_a1 = self.vm("a1", "198.18.0.1", VNI_A, 1)
        a2, ns_a2, mac_a2 = self.vm("a2", "198.18.0.2", VNI_A, 2)
        b1, ns_b1, mac_b1 = self.vm("b1", "198.18.1.1", VNI_B, 1)
        self.assertTrue(self.lab.ping(ns_a1, "198.18.0.2"), "local vnics of VNI 42 before the flood")
        self.lab.serve_tcp(ns_a2, "198.18.0.2", 8080)
        self.assertTrue(self.lab.tcp_request(ns_a1, "198.18.0.2", 8080))
        self.ok("fdb", "add", "--vni", str(VNI_B), "--mac", STATIC_MAC, "--vtep", FLOODER_VTEP,
                endpoint=self.host.endpoint)
        self.inject(VNI_B, mac_b1, VNI_B_FIRST_MAC, VNI_B_LEARNED)
        expected_b = sorted(mac_text(VNI_B_FIRST_MAC + i) for i in range(VNI_B_LEARNED))
        self.assertTrue(self.wait_for(lambda: self.macs(VNI_B, "learned") == expected_b), self.macs(VNI_B, "learned"))
        local_before = self.macs(VNI_A, "local") + self.macs(VNI_B, "local")
        self.assertEqual(local_before, sorted([mac_a1, mac_a2, mac_b1]))
        decapsulated_before = self.decapsulated()

        sent, seconds = self.inject(VNI_A, mac_a1, FLOOD_FIRST_MAC, MACS, timeout=max(60, MACS // 2000))
        self.assertEqual(sent, MACS)
        # The switch is done with the flood when it stops decapsulating (and learning).
        previous, deadline = -1, time.time() + 120
        while self.decapsulated() != previous and time.time() < deadline:
            previous = self.decapsulated()
            time.sleep(1)
        read = self.decapsulated() - decapsulated_before
        learned_a = self.macs(VNI_A, "learned")
        counters = self.cli_json("stats")["filter"]
        with open("/proc/%d/status" % self.host.process.pid) as status:
            rss_kb = int([line.split()[1] for line in status if line.startswith("VmRSS:")][0])
        print("fdb flood: %d MACs sent in %.2f s, %d frames decapsulated by the switch; VNI %d learned %d "
              "(cap %d); counters %s; butterflyd RSS %d MB"
              % (sent, seconds, read, VNI_A, len(learned_a), CAP,
                 {k: v for k, v in counters.items() if k.startswith("fdb")}, rss_kb // 1024))

        self.assertGreater(read, CAP * 2, "the flood reached the switch")
        self.assertLessEqual(len(learned_a), CAP)
        self.assertEqual(len(learned_a), CAP, "VNI 42 learns up to its cap")
        self.assertEqual(counters["fdb_vni_max"], CAP)
        self.assertEqual(counters["fdb_learned"], CAP + VNI_B_LEARNED)
        # Every decapsulated frame of the flood (each from a new MAC) was learned, refused at the
        # cap (by the control side, or by the worker once the table said the VNI was full), or its
        # event was lost to a full learn ring (counted too, with the few neighbour events).
        refused = counters["fdb_learn_refused"] + counters["fdb_vni_full_frames"]
        self.assertGreater(refused, 0)
        self.assertLessEqual(CAP + refused, read)
        self.assertLessEqual(read - CAP - refused, counters["fdb_learn_ring_full"])
        self.assertEqual(counters.get("fdb_learn_refused_vni_%d" % VNI_A, 0), counters["fdb_learn_refused"])
        self.assertNotIn("fdb_learn_refused_vni_%d" % VNI_B, counters)
        self.assertIn("fdb_learn_refused=", self.ok("stats", endpoint=self.host.endpoint))

        # Nothing else was evicted: VNI 43's learned and static entries, the local vnics.
        self.assertEqual(self.macs(VNI_B, "learned"), expected_b)
        self.assertEqual(self.macs(VNI_B, "static"), [STATIC_MAC])
        self.assertEqual(self.macs(VNI_A, "local") + self.macs(VNI_B, "local"), local_before)
        self.assertTrue(self.lab.ping(ns_a1, "198.18.0.2"), "local vnics of VNI 42 after the flood")
        self.assertTrue(self.lab.tcp_request(ns_a1, "198.18.0.2", 8080))
        # A learned MAC of the full VNI 42 that shows up behind another VTEP moves there.
        moved = learned_a[0]
        self.inject(VNI_A, mac_a1, int(moved.replace(":", ""), 16), 1, vtep=MOVED_VTEP)
        self.assertTrue(self.wait_for(lambda: self.vtep_of(VNI_A, moved) == [MOVED_VTEP]), self.vtep_of(VNI_A, moved))
        self.assertEqual(len(self.macs(VNI_A, "learned")), CAP)
        # VNI 43 still learns: its own cap is untouched by VNI 42's flood.
        self.inject(VNI_B, mac_b1, VNI_B_FIRST_MAC + VNI_B_LEARNED, 1)
        self.assertTrue(self.wait_for(lambda: len(self.macs(VNI_B, "learned")) == VNI_B_LEARNED + 1))
        self.assertIsNone(self.host.process.poll(), "butterflyd alive")

    def test_a_full_vni_learns_again_once_its_entries_age_out(self):
        self.start(50, 2)
        a1, ns_a1, mac_a1 = self.vm("a1", "198.18.0.1", VNI_A, 1)
        self.inject(VNI_A, mac_a1, FLOOD_FIRST_MAC, 500)
        self.assertTrue(self.wait_for(lambda: len(self.macs(VNI_A, "learned")) == 50), len(self.macs(VNI_A, "learned")))
        self.assertTrue(self.wait_for(lambda: not self.macs(VNI_A, "learned"), seconds=15), "aged out")
        fresh = 0x0e0000000000  # unicast, locally administered
        self.inject(VNI_A, mac_a1, fresh, 10)
        expected = sorted(mac_text(fresh + i) for i in range(10))
        self.assertTrue(self.wait_for(lambda: self.macs(VNI_A, "learned") == expected),
                        (self.macs(VNI_A, "learned"), self.cli_json("stats")))


if __name__ == "__main__":
    unittest.main()
