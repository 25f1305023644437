"""The switch carrying real traffic: kernel network namespaces behind TAP vnics play the VMs.
Every namespace, link, daemon and process is created by the test and removed in its cleanup."""
import json
import os
import socket
import subprocess
import time
import unittest

from harness import DaemonTestCase
from netlab import NetLab
from test_cli import readme_example_commands

DATAPLANE = ("--dpdk-args", "--no-pci", "--workers", "1")


class KernelVmTest(DaemonTestCase):
    daemon_args = DATAPLANE

    def setUp(self):
        super().setUp()
        self.lab = NetLab(self)

    def vm(self, suffix, vni, address, sgs=(), extra=()):
        """A TAP vnic moved into its own namespace with `address` (/24); returns (nic id, ns)."""
        nic = self.lab.name(suffix)
        args = ["nic", "add", "--id", nic, "--mac", "52:54:00:00:%02x:%02x" % (vni % 256, len(nic) + ord(suffix[-1])),
                "--vni", str(vni), "--ip", address, "--type", "tap"]
        for sg in sgs:
            args += ["--sg", sg]
        self.ok(*(args + list(extra)))
        namespace = self.lab.netns(suffix)
        self.lab.move(nic, namespace, address + "/24")
        return nic, namespace

    def stats(self, nic):
        return json.loads(self.ok("--json", "nic", "stats", nic))

    def test_ping_and_tcp_within_a_vni_never_across(self):
        self.ok("sg", "rule", "add", "open", "--ip-proto", "all", "--cidr", "0.0.0.0/0")
        a, ns_a = self.vm("a", 42, "198.18.0.1", ["open"])
        b, ns_b = self.vm("b", 42, "198.18.0.2", ["open"])
        c, ns_c = self.vm("c", 51, "198.18.0.3", ["open"])
        self.lab.serve_tcp(ns_b, "198.18.0.2", 8080)
        self.lab.serve_tcp(ns_c, "198.18.0.3", 8080)
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2"))
        self.assertTrue(self.lab.tcp_request(ns_a, "198.18.0.2", 8080))
        before = self.stats(c)["packets_out"]
        self.assertFalse(self.lab.ping(ns_a, "198.18.0.3", count=2))
        self.assertFalse(self.lab.tcp_request(ns_a, "198.18.0.3", 8080))
        self.assertEqual(self.stats(c)["packets_out"], before, "a frame crossed from VNI 42 to 51")
        self.assertGreater(self.stats(b)["packets_out"], 0)

    def test_security_group_allows_tcp80_drops_tcp22_and_changes_live(self):
        self.ok("sg", "rule", "add", "web", "--ip-proto", "tcp", "--port", "80", "--cidr", "198.18.0.0/24")
        client, ns_client = self.vm("cl", 7, "198.18.0.10")
        server, ns_server = self.vm("sv", 7, "198.18.0.20", ["web"])
        self.lab.serve_tcp(ns_server, "198.18.0.20", 80)
        self.lab.serve_tcp(ns_server, "198.18.0.20", 22)
        self.assertTrue(self.lab.tcp_request(ns_client, "198.18.0.20", 80), "tcp/80 allowed, reply included")
        filtered = self.stats(server)["drops"]["filter"]
        self.assertFalse(self.lab.tcp_request(ns_client, "198.18.0.20", 22))
        self.assertGreater(self.stats(server)["drops"]["filter"], filtered, "tcp/22 dropped by the filter")
        self.assertFalse(self.lab.ping(ns_client, "198.18.0.20", count=1))

        # Mid-stream: the rule goes away, the established flow is cut; it comes back, flows again.
        stream = self.lab.popen(ns_client, ["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "tcp_tools.py"),
                                            "stream", "198.18.0.20", "80", "4"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        self.ok("sg", "rule", "del", "web", "--ip-proto", "tcp", "--port", "80", "--cidr", "198.18.0.0/24")
        cut_at = 1.0
        time.sleep(1.5)
        self.ok("sg", "rule", "add", "web", "--ip-proto", "tcp", "--port", "22", "--cidr", "198.18.0.0/24")
        echoes = [float(line) for line in stream.communicate(timeout=15)[0].split()]
        self.assertTrue([t for t in echoes if t < cut_at], "the stream flowed before the change")
        self.assertFalse([t for t in echoes if cut_at + 0.3 < t], "the removed rule still let it through")
        self.assertTrue(self.lab.tcp_request(ns_client, "198.18.0.20", 22), "the new rule applies at once")
        self.assertFalse(self.lab.tcp_request(ns_client, "198.18.0.20", 80))

    def test_readme_example_carries_what_should_talk_and_nothing_else(self):
        namespaces = {}
        for command in readme_example_commands():
            if command[:2] == ["nic", "add"]:
                nic = command[command.index("--id") + 1]
                command = command[:]
                command[command.index("--id") + 1] = self.lab.name(nic[-1])
                command += ["--type", "tap"]
            self.ok(*command)
            if command[:2] == ["nic", "add"]:
                nic = command[command.index("--id") + 1]
                address = command[command.index("--ip") + 1]
                namespace = self.lab.netns("n" + nic[-1])
                self.lab.move(nic, namespace, address + "/24")
                namespaces[address] = (namespace, int(command[command.index("--vni") + 1]))
                self.lab.serve_tcp(namespace, address, 80)
                self.lab.serve_tcp(namespace, address, 22)
        self.assertEqual(len(namespaces), 6)
        for source, (namespace, vni) in namespaces.items():
            for target, (_, target_vni) in namespaces.items():
                if source == target:
                    continue
                self.assertEqual(self.lab.tcp_request(namespace, target, 80), vni == target_vni,
                                 "tcp/80 %s (vni %d) -> %s (vni %d)" % (source, vni, target, target_vni))
        namespace, _ = namespaces["198.18.0.1"]
        self.assertFalse(self.lab.tcp_request(namespace, "198.18.0.2", 22), "sg-web allows port 80 only")

    def test_malformed_frames_from_a_vm_are_counted_and_dropped(self):
        self.ok("sg", "rule", "add", "open", "--ip-proto", "all", "--cidr", "0.0.0.0/0")
        a, ns_a = self.vm("a", 9, "198.18.0.1", ["open"])
        b, ns_b = self.vm("b", 9, "198.18.0.2", ["open"])
        mac = json.loads(self.ok("--json", "nic", "details", a))[0]["mac"]
        src = bytes.fromhex(mac.replace(":", ""))
        frames = [
            b"\xff" * 6 + src + b"\x08\x00",                           # IPv4 with no header
            b"\xff" * 6 + src + b"\x08\x00" + b"\x45\x00\x00",           # truncated IPv4 header
            b"\xff" * 6 + src + b"\x08\x00" + b"\x46" + b"\x00" * 19,    # IHL past the packet
            b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x99" + b"\x08\x00" + b"\x45" + b"\x00" * 19,  # spoofed MAC
            b"\xff" * 6 + src + b"\x80\x35" + b"\x00" * 28,            # RARP
        ]
        before = self.stats(a)["drops"]
        inject = ("import socket,sys\n"
                  "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
                  "s.bind((sys.argv[1],0))\n"
                  "for f in sys.argv[2:]: s.send(bytes.fromhex(f))\n")
        self.lab.run(ns_a, ["/usr/bin/python3", "-c", inject, a] + [f.hex() for f in frames])
        time.sleep(0.3)
        after = self.stats(a)["drops"]
        self.assertGreaterEqual(after["malformed"] - before["malformed"], 3, after)
        self.assertGreaterEqual(after["antispoof"] - before["antispoof"], 2)
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2"), "the daemon keeps forwarding")

    def test_a_burst_to_several_vms_delivers_each_frame_to_its_own(self):
        """A VM sends frames to two neighbours in turn, as fast as it can: the switch reads them in
        bursts, and each frame still goes to the vnic of its own destination MAC (a burst's run of
        frames to one vnic is looked up once: a frame to another must not follow the run)."""
        self.ok("sg", "rule", "add", "open", "--ip-proto", "all", "--cidr", "0.0.0.0/0")
        vms = {name: self.vm(name, 11, address, ["open"])
               for name, address in (("a", "198.18.0.1"), ("b", "198.18.0.2"), ("c", "198.18.0.3"))}
        mac = {name: json.loads(self.ok("--json", "nic", "details", nic))[0]["mac"] for name, (nic, _) in vms.items()}
        count = 64
        receive = ("import socket\n"
                   "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                   "s.bind(('0.0.0.0',7777))\n"
                   "print('ready',flush=True)\n"
                   "s.settimeout(3)\n"
                   "n=0\n"
                   "try:\n"
                   "    while True: s.recv(100); n+=1\n"
                   "except socket.timeout: print(n)\n")
        # Ethernet + IPv4 (checksummed) + UDP 7777 -> 7777 (no checksum), alternating b and c.
        inject = ("import socket,struct,sys\n"
                  "src_mac=bytes.fromhex(sys.argv[2])\n"
                  "targets=[(bytes.fromhex(m),socket.inet_aton(ip)) for m,ip in zip(sys.argv[3::2],sys.argv[4::2])]\n"
                  "def csum(h):\n"
                  "    t=sum(struct.unpack('!10H',h)); t=(t&0xffff)+(t>>16); t=(t&0xffff)+(t>>16)\n"
                  "    return struct.pack('!H',~t&0xffff)\n"
                  "frames=[]\n"
                  "for i in range(%d):\n"
                  "    dst_mac,dst_ip=targets[i%%2]\n"
                  "    udp=struct.pack('!HHHH',7777,7777,12,0)+b'%%04d'%%i\n"
                  "    ip=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(udp),i,0,64,17,0,socket.inet_aton('198.18.0.1'),dst_ip)\n"
                  "    ip=ip[:10]+csum(ip)+ip[12:]\n"
                  "    frames.append(dst_mac+src_mac+b'\\x08\\x00'+ip+udp)\n"
                  "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
                  "s.bind((sys.argv[1],0))\n"
                  "for f in frames: s.send(f)\n" % count)
        hexmac = lambda name: mac[name].replace(":", "")
        stages = lambda: json.loads(self.ok("--json", "stats"))["workers"][0]["stages"]["vnic_rx"]
        # The test means something only if the switch read several of these frames at once: a
        # round whose bursts all held one frame (the worker outpacing the sender) is run again.
        multi_frame_bursts = False
        for _ in range(5):
            receivers = {}
            for name in ("b", "c"):
                receivers[name] = self.lab.popen(vms[name][1], ["/usr/bin/python3", "-c", receive],
                                                 stdout=subprocess.PIPE, text=True)
                self.assertEqual(receivers[name].stdout.readline().strip(), "ready")
            before = stages()
            self.lab.run(vms["a"][1], ["/usr/bin/python3", "-c", inject, vms["a"][0], hexmac("a"),
                                       hexmac("b"), "198.18.0.2", hexmac("c"), "198.18.0.3"])
            received = {name: int(process.communicate(timeout=30)[0].strip()) for name, process in receivers.items()}
            after = stages()
            self.assertEqual(received, {"b": count // 2, "c": count // 2})
            if after["packets"] - before["packets"] > after["calls"] - before["calls"]:
                multi_frame_bursts = True
                break
        self.assertTrue(multi_frame_bursts, "in 5 rounds, every burst held a single frame")

    def test_flows_export_and_import(self):
        self.ok("sg", "rule", "add", "icmp", "--ip-proto", "icmp", "--cidr", "0.0.0.0/0")
        a, ns_a = self.vm("a", 4, "198.18.0.1", ["icmp"])
        b, ns_b = self.vm("b", 4, "198.18.0.2", ["icmp"])
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=2))
        saved = os.path.join(self.tmp.name, "b.flows")
        exported = json.loads(self.ok("--json", "nic", "export", b, "--out", saved))
        self.assertGreater(exported["bytes"], 16, "the ping's flow is tracked and exported")
        # The VM "moves": a new vnic imports the flows, and has them (same bytes out again).
        moved = self.lab.name("m")
        self.ok("nic", "add", "--id", moved, "--mac", "52:54:00:00:09:09", "--vni", "4", "--type", "tap",
                "--flows", saved)
        again = os.path.join(self.tmp.name, "m.flows")
        self.assertEqual(json.loads(self.ok("--json", "nic", "export", moved, "--out", again))["bytes"],
                         exported["bytes"])
        # Garbage is refused whole: the vnic is not created.
        garbage = os.path.join(self.tmp.name, "garbage.flows")
        with open(garbage, "wb") as f:
            f.write(b"not flows at all")
        bad = self.lab.name("g")
        result = self.run_cli("nic", "add", "--id", bad, "--mac", "52:54:00:00:09:0a", "--vni", "4",
                              "--type", "tap", "--flows", garbage)
        self.assertEqual(result.returncode, 1)
        self.assertIn("fw_data", result.stderr)
        self.assertNotIn(bad, self.ok("nic", "list").split())

    def test_stats_show_workers_and_stages(self):
        self.ok("sg", "rule", "add", "open", "--ip-proto", "icmp", "--cidr", "0.0.0.0/0")
        a, ns_a = self.vm("a", 3, "198.18.0.1", ["open"])
        b, ns_b = self.vm("b", 3, "198.18.0.2", ["open"])
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=5))
        stats = json.loads(self.ok("--json", "stats"))
        self.assertEqual(len(stats["workers"]), 1)
        stages = stats["workers"][0]["stages"]
        for stage in ["vnic_rx", "antispoof", "filter_egress", "l2_lookup", "filter_ingress", "vnic_tx"]:
            self.assertGreaterEqual(stages[stage]["packets"], 10, stage)
            self.assertGreater(stages[stage]["cycles"], 0, stage)
        human = self.ok("stats")
        self.assertIn("CYCLES/PKT", human)
        nic = self.stats(b)
        self.assertGreaterEqual(nic["packets_out"], 5)
        self.assertGreaterEqual(nic["bytes_out"], 5 * 98)


if __name__ == "__main__":
    unittest.main()
