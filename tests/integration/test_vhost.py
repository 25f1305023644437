"""vhost-user vnics with a real virtio driver on the other side: dpdk-testpmd with net_virtio_user
plays the VMs (no QEMU needed). Frames are counted at every hop and must add up exactly."""
import json
import os
import re
import subprocess
import threading
import time
import unittest

from harness import DaemonTestCase, RawClient, message_pb2

TESTPMD = "/usr/bin/dpdk-testpmd"


class TestpmdVm:
    """One testpmd "VM" attached to a vnic's socket, driven through its interactive prompt. Its output
    is read as it comes, so the test can ask for counters while it runs."""

    def __init__(self, testcase, socket_path, mac, mode, extra=(), server=False, pcap=None):
        """`pcap`: the arguments of a net_pcap port, port 0 (the virtio port is then port 1)."""
        self.prefix = "bfvm%d_%s" % (os.getpid(), mac[-2:])
        vdevs = ["--vdev=net_virtio_user0,path=%s,mac=%s%s" % (socket_path, mac, ",server=1" if server else "")]
        if pcap:
            vdevs.insert(0, "--vdev=net_pcap0," + pcap)
        # Line-buffered: the test reads counters while testpmd runs, not only when it exits.
        command = ["stdbuf", "-oL", TESTPMD, "-l", "0,1", "--no-pci", "--no-huge", "-m", "512",
                   "--file-prefix=" + self.prefix] + vdevs + ["--", "-i",
                   "--forward-mode=" + mode, "--total-num-mbufs=8192"] + list(extra)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.lines_lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_output, daemon=True)
        self.reader.start()
        testcase.addCleanup(self.cleanup)
        self.output = ""

    def _read_output(self):
        for line in self.process.stdout:
            with self.lines_lock:
                self.lines.append(line)

    def printed(self):
        with self.lines_lock:
            return "".join(self.lines)

    def command(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def port_rx_packets(self, timeout=30, port=0):
        """What the VM's port has received so far (testpmd's `show port stats`)."""
        seen = self.printed().count("RX-packets:")
        self.command("show port stats %d" % port)
        deadline = time.time() + timeout
        while time.time() < deadline:
            output = self.printed()
            if output.count("RX-packets:") > seen:
                return int(re.findall(r"RX-packets:\s+(\d+)", output)[-1])
            time.sleep(0.05)
        raise AssertionError("testpmd did not answer `show port stats`:\n" + self.printed()[-3000:])

    def finish(self, timeout=60):
        """Stops forwarding (testpmd prints its counters) and quits."""
        start = len(self.printed())
        self.command("stop")
        self.command("quit")
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=timeout)
        self.output = self.printed()[start:]
        return self.output

    def counter(self, name):
        match = re.search(name + r":\s+(\d+)", self.output)
        if not match:
            raise AssertionError("testpmd printed no %s:\n%s" % (name, self.output[-3000:]))
        return int(match.group(1))

    def cleanup(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe and not pipe.closed:
                pipe.close()
        subprocess.run(["rm", "-rf", "/var/run/dpdk/" + self.prefix], check=False)


class VhostUserTest(DaemonTestCase):
    daemon_args = ("--dpdk-args", "--no-pci", "--workers", "1")

    def links(self):
        return {n["id"]: n["link"] for n in json.loads(self.ok("--json", "nic", "details"))}

    def wait_for(self, condition, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.2)
        self.fail("timed out waiting for %s" % condition)

    def counters_settled(self):
        snapshot = lambda: [json.loads(self.ok("--json", "nic", "stats", nic)) for nic in ("va", "vb")]
        before = snapshot()
        time.sleep(0.5)
        return snapshot() == before

    def test_testpmd_vms_counts_match_and_nothing_crosses_vnis(self):
        self.ok("sg", "rule", "add", "udp9", "--ip-proto", "udp", "--port", "9", "--cidr", "198.18.0.0/24")
        macs = {"va": "52:54:00:00:00:0a", "vb": "52:54:00:00:00:0b", "vc": "52:54:00:00:00:0c"}
        for nic, vni, ip in (("va", 1, "198.18.0.1"), ("vb", 1, "198.18.0.2"), ("vc", 2, "198.18.0.3")):
            self.ok("nic", "add", "--id", nic, "--mac", macs[nic], "--vni", str(vni), "--ip", ip, "--sg", "udp9")
        socket_of = lambda nic: os.path.join(self.daemon.socket_dir, "qemu-vhost-" + nic)
        # --no-flush-rx: testpmd's `start` would otherwise discard, uncounted, what reached the
        # ring before it (on a loaded machine the sender can be first).
        receiver = TestpmdVm(self, socket_of("vb"), macs["vb"], "rxonly", ["--no-flush-rx"])
        bystander = TestpmdVm(self, socket_of("vc"), macs["vc"], "rxonly", ["--no-flush-rx"])
        # testpmd's txonly frames: UDP 198.18.0.1:9 -> 198.18.0.2:9, to the --eth-peer MAC.
        sender = TestpmdVm(self, socket_of("va"), macs["va"], "txonly", ["--eth-peer=0," + macs["vb"]])
        self.wait_for(lambda: self.links() == {"va": "connected", "vb": "connected", "vc": "connected"})
        receiver.command("start")
        bystander.command("start")
        time.sleep(0.5)
        sender.command("start")
        # A freshly attached virtio ring may take a moment before the vhost library serves it.
        self.wait_for(lambda: json.loads(self.ok("--json", "nic", "stats", "va"))["packets_in"] > 10000)
        time.sleep(1)
        sender.finish()
        # Everything the switch took is delivered or dropped, and everything delivered is read by the
        # receiving VM, before it stops counting: on a loaded machine either side may lag behind.
        # (Should they never agree, the assertions below say by how much.)
        vb_packets_out = lambda: json.loads(self.ok("--json", "nic", "stats", "vb"))["packets_out"]
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.counters_settled() and receiver.port_rx_packets() == vb_packets_out():
                break
            time.sleep(0.2)
        receiver.finish()
        bystander.finish()
        stats = {nic: json.loads(self.ok("--json", "nic", "stats", nic)) for nic in macs}
        sent = sender.counter("TX-packets")
        self.assertGreater(sent, 10000)
        self.assertEqual(stats["va"]["packets_in"], sent, "every frame the VM sent reached the switch")
        delivered = stats["vb"]["packets_out"]
        dropped = sum(stats["vb"]["drops"].values()) + sum(stats["va"]["drops"].values())
        self.assertEqual(stats["vb"]["drops"]["filter"], 0)
        self.assertEqual(delivered + dropped, sent, "each frame is delivered or counted as dropped")
        # On a mismatch, what the VM's testpmd said of its port (RX-missed, RX-errors, RX-nombuf).
        self.assertEqual(receiver.counter("RX-packets"), delivered,
                         "what the switch sent, the VM got; vb %s; the VM's testpmd:\n%s"
                         % (stats["vb"], receiver.output[-2000:]))
        self.assertEqual(bystander.counter("RX-packets"), 0, "nothing crossed to VNI 2")
        self.assertEqual(stats["vc"]["packets_out"], 0)

    def test_vms_killed_mid_traffic_leave_the_switch_running(self):
        """VMs that die (kill -9) while frames flow: the switch keeps serving and stops cleanly.
        (It crashed here once: a worker back from its idle sleep touched a freed vhost device.)"""
        self.ok("sg", "rule", "add", "udp9", "--ip-proto", "udp", "--port", "9", "--cidr", "198.18.0.0/24")
        macs = {"va": "52:54:00:00:00:0a", "vb": "52:54:00:00:00:0b"}
        for nic, ip in (("va", "198.18.0.1"), ("vb", "198.18.0.2")):
            self.ok("nic", "add", "--id", nic, "--mac", macs[nic], "--vni", "1", "--ip", ip, "--sg", "udp9")
        socket_of = lambda nic: os.path.join(self.daemon.socket_dir, "qemu-vhost-" + nic)
        receiver = TestpmdVm(self, socket_of("vb"), macs["vb"], "rxonly")
        sender = TestpmdVm(self, socket_of("va"), macs["va"], "txonly", ["--eth-peer=0," + macs["vb"]])
        self.wait_for(lambda: self.links() == {"va": "connected", "vb": "connected"})
        receiver.command("start")
        sender.command("start")
        self.wait_for(lambda: json.loads(self.ok("--json", "nic", "stats", "vb"))["packets_out"] > 1000)
        # Killed, not waited for: the switch sees the VM vanish while it still forwards to it.
        receiver.process.kill()
        time.sleep(1)
        self.assertIsNone(self.daemon.process.poll(), "butterflyd died with the receiving VM")
        self.ok("status")
        sender.process.kill()
        time.sleep(1)
        self.assertIsNone(self.daemon.process.poll(), "butterflyd died with the sending VM")
        self.wait_for(lambda: self.links() == {"va": "waiting", "vb": "waiting"})
        runtime_dir = self.daemon.runtime_dir()
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log()[-3000:])
        self.assertFalse(os.path.exists(runtime_dir), "a clean stop removes DPDK's runtime files")

    def test_client_mode_connects_to_the_vms_socket_and_reconnects_after_a_restart(self):
        # The VM (testpmd) owns the socket, as QEMU does with server=on; Butterfly connects to it.
        socket_path = os.path.join(self.tmp.name, "vm.sock")
        vm = TestpmdVm(self, socket_path, "52:54:00:00:00:0d", "rxonly", server=True)
        self.wait_for(lambda: os.path.exists(socket_path))
        add = ["nic", "add", "--id", "vd", "--mac", "52:54:00:00:00:0d", "--vni", "5", "--type", "vhost-client",
               "--path", socket_path]
        self.assertEqual(self.ok(*add).strip(), socket_path)
        self.wait_for(lambda: self.links() == {"vd": "connected"})
        # Butterfly goes away and comes back: it reconnects by itself, nothing happens on the VM side.
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon = self.start_daemon(args=self.daemon_args)
        self.ok(*add)
        self.wait_for(lambda: self.links() == {"vd": "connected"})
        vm.finish()


    def test_past_the_vhost_librarys_limit_a_vnic_is_refused_with_the_reason(self):
        """DPDK's vhost library serves 1,023 sockets per process: the one after is refused with a
        reason, the batch's other vnics stay, and the refused one leaves nothing behind."""
        client = RawClient(self.daemon.endpoint, timeout_ms=60000)
        self.addCleanup(client.close)
        batch = message_pb2.Messages()
        for i in range(1024):
            message = batch.messages.add()
            message.revision = 0
            nic = message.message_0.request.nic_add
            nic.id = "v%04d" % i
            nic.mac = "52:54:00:01:%02x:%02x" % (i >> 8, i & 255)
            nic.vni = 7
        answer = client.send(batch)
        statuses = [m.message_0.response.status for m in answer.messages]
        self.assertTrue(all(s.status for s in statuses[:1023]))
        self.assertFalse(statuses[1023].status)
        self.assertIn("at most 1023 vhost-user sockets per process", statuses[1023].error.description)
        self.assertEqual(len(self.ok("nic", "list").split()), 1023)
        self.assertFalse(os.path.exists(os.path.join(self.daemon.socket_dir, "qemu-vhost-v1023")))
        self.ok("nic", "del", "v0000")
        self.ok("nic", "add", "--id", "v1023", "--mac", "52:54:00:01:03:ff", "--vni", "7")


if __name__ == "__main__":
    unittest.main()
