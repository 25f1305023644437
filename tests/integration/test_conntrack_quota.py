"""One VM flooding new flows must not stop the other VMs' new connections: each vnic's flows hold
at most its quota of the worker's connection-tracking table (--conntrack-vnic-quota).

VM A sends distinct UDP flows (that its security group allows) as fast as a packet socket can,
to VM C and, broadcast, to an address of no VM (flooded to B and C), while VM B opens TCP
connections to VM C: every one must succeed, and the refused flows count as conntrack_full drops
on A only. BUTTERFLY_FLOOD_FLOWS sets the flood's size (default 200,000; `make
conntrack-flood-test` runs it with 1,000,000)."""
import json
import os
import subprocess
import time
import unittest

from harness import DaemonTestCase
from netlab import NetLab

TABLE = 4096
# Odd, so that A's flows into C (an entry on A's egress and one on C's ingress, both charged to A)
# cannot fill it exactly: some ingress entry is refused on A's quota, and that drop must count on A.
QUOTA = 511
FLOWS = int(os.environ.get("BUTTERFLY_FLOOD_FLOWS", "200000"))
CONNECTIONS = 20

# argv: interface, source MAC, C's MAC, flows, file to create when done. Frame i: UDP from a
# source port of 1024..65535 to a destination port that changes every 64,512 frames (so every
# frame is a new flow). The first 8192 go to C (A's whole quota of flows into C, which would
# fill C's quota were they charged to C), then three in four, the fourth is broadcast to
# 198.18.0.77 (flooded to B and C).
FLOOD = r"""
import socket, struct, sys, time
interface, src_mac, c_mac, flows, done = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def checksum(header):
    total = sum(struct.unpack('!10H', header))
    total = (total & 0xffff) + (total >> 16)
    total = (total & 0xffff) + (total >> 16)
    return struct.pack('!H', ~total & 0xffff)
heads = []
for dst_mac, dst_ip in ((c_mac, '198.18.0.3'), (b'\xff' * 6, '198.18.0.77')):
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + 8 + 4, 0, 0, 64, 17, 0,
                     socket.inet_aton('198.18.0.1'), socket.inet_aton(dst_ip))
    ip = ip[:10] + checksum(ip) + ip[12:]
    heads.append(dst_mac + src_mac + b'\x08\x00' + ip)
tail = struct.pack('!HH', 12, 0) + b'ping'
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((interface, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
print('flooding', flush=True)
start = time.time()
sent = 0
ports = 65536 - 1024
for i in range(flows):
    head = heads[0] if i < 8192 or i % 4 else heads[1]
    frame = head + struct.pack('!HH', 1024 + i % ports, 1 + i // ports) + tail
    while True:
        try:
            s.send(frame)
            break
        except (BlockingIOError, OSError):
            time.sleep(0.0005)  # the TAP's queue is full: the switch is behind
    sent += 1
open(done, 'w').close()
print(sent, '%.2f' % (time.time() - start), flush=True)
"""

# argv: C's address, port, minimum connections, file the flood creates when done. Opens
# connections (each must answer within 5 s: a SYN lost on this shared, loaded machine is sent
# again after 1 s, a refused flow never passes) until the flood is over and at least the minimum
# were made, the minimum 50 ms apart, then one every 200 ms; prints "<succeeded> <failed>".
# (Paced, and at most 200 during the flood: B's own flows, two entries per connection that stay
# 2 minutes after the close, must stay under its quota however long the flood takes.)
CONNECT = r"""
import os, socket, sys, time
address, port, minimum, done = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
succeeded = failed = 0
while succeeded + failed < minimum or not os.path.exists(done):
    time.sleep(0.05 if succeeded + failed < minimum else 0.2)
    if succeeded + failed >= 200:
        continue
    try:
        with socket.create_connection((address, port), timeout=5) as connection:
            connection.sendall(b'hello\n')
            connection.settimeout(5)
            ok = connection.makefile('rb').readline().startswith(b'OK 1')
    except OSError:
        ok = False
    succeeded += ok
    failed += not ok
print(succeeded, failed, flush=True)
"""


class ConntrackQuotaTest(DaemonTestCase):
    daemon_args = ("--dpdk-args", "--no-pci", "--workers", "1", "--conntrack-entries", str(TABLE),
                   "--conntrack-vnic-quota", str(QUOTA))

    def setUp(self):
        super().setUp()
        self.lab = NetLab(self)

    def vm(self, suffix, address, last_mac_byte):
        nic = self.lab.name(suffix)
        self.ok("nic", "add", "--id", nic, "--mac", "52:54:00:00:2a:%02x" % last_mac_byte, "--vni", "42",
                "--ip", address, "--type", "tap", "--sg", "open")
        namespace = self.lab.netns(suffix)
        self.lab.move(nic, namespace, address + "/24")
        return nic, namespace

    def drops(self, nic):
        return json.loads(self.ok("--json", "nic", "stats", nic))["drops"]["conntrack_full"]

    def test_a_flooding_vm_does_not_stop_another_vms_new_connections(self):
        self.ok("sg", "rule", "add", "open", "--ip-proto", "all", "--cidr", "0.0.0.0/0")
        a, ns_a = self.vm("qa", "198.18.0.1", 1)
        b, ns_b = self.vm("qb", "198.18.0.2", 2)
        c, ns_c = self.vm("qc", "198.18.0.3", 3)
        self.lab.serve_tcp(ns_c, "198.18.0.3", 8080)
        self.assertTrue(self.lab.tcp_request(ns_b, "198.18.0.3", 8080), "B reaches C before the flood")
        done = os.path.join(self.tmp.name, "flood.done")
        mac = lambda nic: json.loads(self.ok("--json", "nic", "details", nic))[0]["mac"].replace(":", "")
        flood = self.lab.popen(ns_a, ["/usr/bin/python3", "-c", FLOOD, a, mac(a), mac(c), str(FLOWS), done],
                               stdout=subprocess.PIPE, text=True)
        self.assertEqual(flood.stdout.readline().strip(), "flooding")
        connect = self.lab.popen(ns_b, ["/usr/bin/python3", "-c", CONNECT, "198.18.0.3", "8080",
                                        str(CONNECTIONS), done], stdout=subprocess.PIPE, text=True)
        sent, seconds = flood.communicate(timeout=600)[0].split()
        succeeded, failed = map(int, connect.communicate(timeout=120)[0].split())
        all_drops = {name: {reason: count for reason, count in
                            json.loads(self.ok("--json", "nic", "stats", nic))["drops"].items() if count}
                     for name, nic in (("A", a), ("B", b), ("C", c))}
        worker = {reason: count for reason, count in
                  json.loads(self.ok("--json", "stats"))["workers"][0]["drops"].items() if count}
        received = json.loads(self.ok("--json", "nic", "stats", a))["packets_in"]
        print("flood: %s flows sent in %s s, %d frames read by the switch; B -> C: %d connections "
              "succeeded, %d failed; drops: %s, worker %s"
              % (sent, seconds, received, succeeded, failed, all_drops, worker))
        self.assertEqual(int(sent), FLOWS)
        self.assertGreaterEqual(succeeded + failed, CONNECTIONS)
        self.assertEqual(failed, 0, "B's connections to C failed while A flooded")
        # More of the flood was refused than the whole table holds, and only A was charged for it.
        self.assertGreater(self.drops(a), TABLE)
        self.assertEqual(self.drops(b), 0)
        self.assertEqual(self.drops(c), 0)
        # `butterfly stats` tells a quota refusal from a full table.
        counters = json.loads(self.ok("--json", "stats"))["filter"]
        self.assertEqual(counters["conntrack_vnic_quota"], QUOTA)
        self.assertEqual(counters["conntrack_full"], 0)
        self.assertEqual(counters["conntrack_quota_refused"], self.drops(a))
        self.assertIn("conntrack_quota_refused=", self.ok("stats"))


if __name__ == "__main__":
    unittest.main()
