"""VXLAN between hosts: two butterflyd processes whose underlays are the two ends of a veth pair
(net_af_packet), and the Linux kernel's own VXLAN device as an independent peer."""
import json
import os
import socket
import struct
import subprocess
import time
import unittest

from harness import DaemonTestCase
from netlab import NetLab

VNI = 42


class VxlanTest(DaemonTestCase):
    daemon_args = None

    def setUp(self):
        super().setUp()
        self.lab = NetLab(self)

    def host(self, name, underlay, vtep, extra=()):
        return self.start_daemon(name=name, args=[
            "-i", vtep, "--workers", "1", "--fdb-ageing", "3",
            "--dpdk-args", "--no-pci --vdev=net_af_packet0,iface=%s" % underlay] + list(extra))

    def vm(self, daemon, suffix, address, vni=VNI):
        nic = self.lab.name(suffix)
        self.ok("nic", "add", "--id", nic, "--mac", "52:54:00:00:01:%02x" % ord(suffix[-1]), "--vni",
                str(vni), "--ip", address, "--type", "tap", "--bypass-filtering", endpoint=daemon.endpoint)
        namespace = self.lab.netns(suffix)
        self.lab.move(nic, namespace, address + "/24")
        return nic, namespace

    def fdb(self, daemon):
        return json.loads(self.ok("--json", "fdb", "list", endpoint=daemon.endpoint))

    def stages(self, daemon):
        return json.loads(self.ok("--json", "stats", endpoint=daemon.endpoint))["workers"][0]["stages"]

    def test_two_hosts_ping_tcp_learning_flooding_and_ageing(self):
        end_a, end_b = self.lab.veth("ua", "ub")
        host_a = self.host("a", end_a, "198.18.100.1")
        host_b = self.host("b", end_b, "198.18.100.2")
        vm_a, ns_a = self.vm(host_a, "va", "198.18.0.1")
        vm_b, ns_b = self.vm(host_b, "vb", "198.18.0.2")
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=4))
        self.lab.serve_tcp(ns_b, "198.18.0.2", 8080)
        self.assertTrue(self.lab.tcp_request(ns_a, "198.18.0.2", 8080))

        learned = [m for m in self.fdb(host_a)["macs"] if m["kind"] == "learned"]
        self.assertEqual([(m["mac"], m["vtep"]) for m in learned], [("52:54:00:00:01:62", "198.18.100.2")])
        self.assertEqual(self.fdb(host_a)["vnis"], [{"vni": VNI, "peers": [], "multicast_group": "230.0.0.42"}])
        stages = self.stages(host_a)
        self.assertGreater(stages["vxlan_encap"]["packets"], 0)
        self.assertGreater(stages["vxlan_decap"]["packets"], 0)

        # Ageing: with no traffic, the learned MAC goes after --fdb-ageing (3 s).
        deadline = time.time() + 10
        while time.time() < deadline and [m for m in self.fdb(host_a)["macs"] if m["kind"] == "learned"]:
            time.sleep(0.5)
        self.assertEqual([m for m in self.fdb(host_a)["macs"] if m["kind"] == "learned"], [])
        # Unknown again: the next frames are flooded (to the multicast group) and still arrive.
        encapsulated = self.stages(host_a)["vxlan_encap"]["packets"]
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=2))
        self.assertGreater(self.stages(host_a)["vxlan_encap"]["packets"], encapsulated)

    def test_head_end_replication_and_static_macs(self):
        end_a, end_b = self.lab.veth("ua", "ub")
        host_a = self.host("a", end_a, "198.18.100.1")
        host_b = self.host("b", end_b, "198.18.100.2")
        vm_a, ns_a = self.vm(host_a, "va", "198.18.0.1")
        vm_b, ns_b = self.vm(host_b, "vb", "198.18.0.2")
        self.ok("vni", "peers", str(VNI), "198.18.100.2", endpoint=host_a.endpoint)
        self.ok("vni", "peers", str(VNI), "198.18.100.1", endpoint=host_b.endpoint)
        self.ok("fdb", "add", "--vni", str(VNI), "--mac", "52:54:00:00:01:62", "--vtep", "198.18.100.2",
                endpoint=host_a.endpoint)
        self.assertEqual(self.fdb(host_a)["vnis"], [{"vni": VNI, "peers": ["198.18.100.2"], "multicast_group": ""}])
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=3))
        static = [m for m in self.fdb(host_a)["macs"] if m["kind"] == "static"]
        self.assertEqual([(m["mac"], m["vtep"]) for m in static], [("52:54:00:00:01:62", "198.18.100.2")])
        dump = self.dump(endpoint=host_a.endpoint)
        self.assertIn("vni_peers_set", dump)
        self.assertIn("fdb_add", dump)
        self.ok("vni", "peers", str(VNI), endpoint=host_a.endpoint)
        self.assertEqual(self.fdb(host_a)["vnis"][0]["multicast_group"], "230.0.0.42")

    def exchange_with_kernel_vxlan(self, kernel, end_k, ns_a, mtu, vtep, fields, tshark_options=()):
        """Finishes the kernel's vx42 (MAC, MTU, 198.18.0.2/24), then captures the tunnel on the
        kernel's side while the Butterfly VM (198.18.0.1) pings it and it opens a TCP connection
        to the VM. Returns tshark's `fields` of the tunnel packets from our `vtep`."""
        self.lab.run(kernel, ["ip", "link", "set", "vx42", "address", "52:54:00:00:02:02", "mtu", str(mtu)])
        self.lab.run(kernel, ["ip", "addr", "add", "198.18.0.2/24", "dev", "vx42"])
        self.lab.run(kernel, ["ip", "link", "set", "vx42", "up"])
        # veth hands over partially checksummed frames (the "hardware" would finish them); a real
        # NIC would complete the inner TCP checksum, so make the kernel do it here.
        for device in ("vx42", end_k):
            self.lab.run(kernel, ["ethtool", "-K", device, "tx", "off"])
        command = ["tshark", "-i", end_k, "-n", "-l", "-c", "4", "-f", "udp port 4789",
                   "-o", "udp.check_checksum:TRUE"] + list(tshark_options) + ["-T", "fields", "-e", "vxlan.vni"]
        for field in fields:
            command += ["-e", field]
        capture = self.lab.popen(kernel, command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.5)  # tshark starting
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=4), "Butterfly VM -> kernel VXLAN")
        self.lab.serve_tcp(ns_a, "198.18.0.1", 8080)
        self.assertTrue(self.lab.tcp_request(kernel, "198.18.0.1", 8080), "kernel VXLAN -> Butterfly VM")
        lines = capture.communicate(timeout=20)[0].split("\n")
        # A field holds one value per header that has it, the outer header's first.
        rows = [line.split("\t") for line in lines]
        ours = [row[1:] for row in rows if len(row) > 1 and row[0] == str(VNI) and row[1].split(",")[0] == vtep]
        self.assertTrue(ours, lines)
        return ours

    def test_linux_kernel_vxlan_interoperates(self):
        end_a, end_k = self.lab.veth("ua", "uk")
        host_a = self.host("a", end_a, "198.18.100.1")
        vm_a, ns_a = self.vm(host_a, "va", "198.18.0.1")
        kernel = self.lab.netns("kv")
        self.lab.move(end_k, kernel, "198.18.100.2/24")
        # The kernel's VXLAN device in the same VNI, flooding to the same multicast group.
        self.lab.run(kernel, ["ip", "link", "add", "vx42", "type", "vxlan", "id", str(VNI), "group", "230.0.0.42",
                              "dev", end_k, "dstport", "4789", "ttl", "8"])
        ours = self.exchange_with_kernel_vxlan(kernel, end_k, ns_a, 1450, "198.18.100.1",
                                               ["ip.src", "ip.checksum.status", "udp.srcport", "udp.checksum.status"],
                                               ["-o", "ip.check_checksum:TRUE"])
        for src, ip_checksum, src_port, udp_checksum in ours:
            # Wireshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present.
            # One value per IP (UDP) header: the outer one first, then the inner packet's.
            self.assertEqual(set(ip_checksum.split(",")), {"1"}, "tshark: IPv4 checksums good")
            self.assertGreaterEqual(int(src_port.split(",")[0]), 49152)
            self.assertIn(udp_checksum.split(",")[0], ("1", "3"),
                          "outer UDP checksum good, or zero (RFC 7348 over IPv4)")

    def test_ipv6_underlay_two_hosts_resolve_each_other_and_carry_traffic(self):
        """VTEPs with IPv6 addresses: each resolves the other by neighbour discovery, floods to
        its peers (an IPv6 underlay has no multicast group), learns, and carries ping and TCP."""
        end_a, end_b = self.lab.veth("ua", "ub")
        host_a = self.host("a", end_a, "2001:db8:100::1")
        host_b = self.host("b", end_b, "2001:db8:100::2")
        vm_a, ns_a = self.vm(host_a, "va", "198.18.0.1")
        vm_b, ns_b = self.vm(host_b, "vb", "198.18.0.2")
        refused = self.run_cli("vni", "peers", str(VNI), "198.18.100.2", endpoint=host_a.endpoint)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("is IPv4, but this host's VTEP address (-i) is IPv6", refused.stderr)
        self.ok("vni", "peers", str(VNI), "2001:db8:100::2", endpoint=host_a.endpoint)
        self.ok("vni", "peers", str(VNI), "2001:db8:100::1", endpoint=host_b.endpoint)
        self.assertTrue(self.lab.ping(ns_a, "198.18.0.2", count=4))
        self.lab.serve_tcp(ns_b, "198.18.0.2", 8080)
        self.assertTrue(self.lab.tcp_request(ns_a, "198.18.0.2", 8080))
        learned = [m for m in self.fdb(host_a)["macs"] if m["kind"] == "learned"]
        self.assertEqual([(m["mac"], m["vtep"]) for m in learned], [("52:54:00:00:01:62", "2001:db8:100::2")])
        stages = self.stages(host_a)
        self.assertGreater(stages["vxlan_encap"]["packets"], 0)
        self.assertGreater(stages["vxlan_decap"]["packets"], 0)
        self.assertGreater(stages["vtep"]["packets"], 0, "neighbour solicitations and advertisements")

    def test_ipv6_underlay_linux_kernel_vxlan_interoperates(self):
        end_a, end_k = self.lab.veth("ua", "uk")
        host_a = self.host("a", end_a, "2001:db8:100::1")
        vm_a, ns_a = self.vm(host_a, "va", "198.18.0.1")
        self.ok("vni", "peers", str(VNI), "2001:db8:100::2", endpoint=host_a.endpoint)
        kernel = self.lab.netns("kv")
        self.lab.move(end_k, kernel)
        self.lab.run(kernel, ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=0" % end_k])
        self.lab.run(kernel, ["ip", "addr", "add", "2001:db8:100::2/64", "dev", end_k, "nodad"])
        # The kernel's VXLAN device in the same VNI, its unknown traffic to our VTEP (with UDP
        # checksums, as Linux sends and requires over IPv6 by default).
        self.lab.run(kernel, ["ip", "link", "add", "vx42", "type", "vxlan", "id", str(VNI), "local", "2001:db8:100::2",
                              "remote", "2001:db8:100::1", "dev", end_k, "dstport", "4789"])
        ours = self.exchange_with_kernel_vxlan(kernel, end_k, ns_a, 1430, "2001:db8:100::1",
                                               ["ipv6.src", "udp.srcport", "udp.checksum.status"])
        for src, src_port, udp_checksum in ours:
            self.assertGreaterEqual(int(src_port.split(",")[0]), 49152)
            # Wireshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present.
            self.assertEqual(udp_checksum.split(",")[0], "1", "outer UDP checksum good")

    def inject_malformed_tunnel_packets(self, vtep, ip, ether_type, extra=()):
        """A host with VTEP `vtep`, and a namespace on its underlay that sends it tunnel packets
        wrong in each way a drop reason names (`ip(payload, **options)` wraps them in the outer IP
        header), then `extra(ip, mac)` more. Returns the host and its drop counters' increase."""
        end_a, end_x = self.lab.veth("ua", "ux")
        host_a = self.host("a", end_a, vtep)
        self.vm(host_a, "va", "198.18.0.1")
        outside = self.lab.netns("ox")
        self.lab.move(end_x, outside, "198.18.100.9/24")
        mac = self.lab.run(outside, ["cat", "/sys/class/net/%s/address" % end_x]).stdout.strip()

        def udp(dst_port, payload):
            return struct.pack("!HHHH", 50000, dst_port, 8 + len(payload), 0) + payload

        inner = b"\x52\x54\x00\x00\x01\x61" + b"\x52\x54\x00\x00\x09\x09" + b"\x08\x06" + b"\x00" * 28
        good_vxlan = struct.pack("!II", 0x08000000, VNI << 8)
        frames = {
            "bad_vxlan": ip(udp(4789, struct.pack("!II", 0, VNI << 8) + inner)),
            "not_vxlan": ip(udp(5000, good_vxlan + inner)),
            "malformed": ip(udp(4789, good_vxlan + inner[:6])),
            "unknown_vni": ip(udp(4789, struct.pack("!II", 0x08000000, 4242 << 8) + inner)),
        }
        before = json.loads(self.ok("--json", "stats", endpoint=host_a.endpoint))["workers"][0]["drops"]
        inject = ("import socket,sys\n"
                  "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
                  "s.bind((sys.argv[1],0))\n"
                  "for f in sys.argv[2:]: s.send(bytes.fromhex(f))\n")
        packets = [(b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) + ether_type + frame).hex()
                   for frame in list(frames.values()) + list(extra(ip, mac, udp, good_vxlan + inner))]
        self.lab.run(outside, ["/usr/bin/python3", "-c", inject, end_x] + packets)
        time.sleep(0.5)
        after = json.loads(self.ok("--json", "stats", endpoint=host_a.endpoint))["workers"][0]["drops"]
        for reason in frames:
            self.assertGreaterEqual(after[reason] - before[reason], 1, reason)
        self.assertTrue(self.ok("nic", "list", endpoint=host_a.endpoint).strip(), "the daemon still serves")
        return host_a, {reason: after[reason] - before[reason] for reason in after}

    def test_malformed_underlay_packets_are_counted_and_dropped(self):
        def ipv4(payload):
            header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, 17, 0,
                                 socket.inet_aton("198.18.100.9"), socket.inet_aton("198.18.100.1"))
            checksum = sum(struct.unpack("!10H", header))
            checksum = ~((checksum & 0xffff) + (checksum >> 16)) & 0xffff
            return header[:10] + struct.pack("!H", checksum) + header[12:] + payload

        self.inject_malformed_tunnel_packets("198.18.100.1", ipv4, b"\x08\x00", lambda *_: [])

    def test_malformed_ipv6_underlay_packets_are_counted_and_dropped(self):
        def ipv6(payload, next_header=17, length=None):
            return struct.pack("!IHBB16s16s", 6 << 28, len(payload) if length is None else length, next_header,
                               64, socket.inet_pton(socket.AF_INET6, "2001:db8:100::9"),
                               socket.inet_pton(socket.AF_INET6, "2001:db8:100::1")) + payload

        def extra(ip, mac, udp, tunnel_payload):
            # Also malformed: a payload length past the frame's end.
            yield ip(udp(4789, tunnel_payload), length=400)
            # A neighbour solicitation for our VTEP that a router forwarded (hop limit 64, not
            # 255, which RFC 4861 makes invalid): it must not disturb the daemon.
            target = socket.inet_pton(socket.AF_INET6, "2001:db8:100::1")
            yield ip(struct.pack("!BBHI16s", 135, 0, 0, 0, target) + b"\x01\x01" + bytes.fromhex(mac.replace(":", "")),
                     next_header=58)

        host_a, drops = self.inject_malformed_tunnel_packets("2001:db8:100::1", ipv6, b"\x86\xdd", extra)
        self.assertGreaterEqual(drops["malformed"], 2, "and the one past the end")
        self.assertEqual([m for m in self.fdb(host_a)["macs"] if m["kind"] != "local"], [], "nothing learnt")

if __name__ == "__main__":
    unittest.main()
