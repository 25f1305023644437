"""Restarts under traffic: butterflyd killed with kill -9 (or stopped cleanly, as `systemctl
restart` does) while testpmd VMs exchange frames, then started again on its state journal. The VMs
do nothing: they own their sockets (server=1; the vnics are --type vhost-client) and the switch
connects back to them. Traffic must resume and `dump` must be what it was.

Each round prints the time from the stop to the first frame delivered again; `make restart-test`
runs many rounds (BUTTERFLY_RESTART_ROUNDS) and prints their median and maximum. (The QEMU guests'
restarts, both vhost-user modes, are in test_qemu.)"""
import json
import os
import statistics
import time

from harness import DaemonTestCase
from test_vhost import TestpmdVm

ROUNDS = int(os.environ.get("BUTTERFLY_RESTART_ROUNDS", "2"))
MACS = {"va": "52:54:00:00:00:0a", "vb": "52:54:00:00:00:0b"}


class RestartUnderTrafficTest(DaemonTestCase):
    daemon_args = None  # started on a state journal below
    args = ("--dpdk-args", "--no-pci", "--workers", "1")

    def setUp(self):
        super().setUp()
        self.state_file = os.path.join(self.tmp.name, "state.journal")
        self.daemon = self.start_daemon(args=self.args, state_file=self.state_file)

    def stats(self, nic):
        result = self.run_cli("--json", "nic", "stats", nic, timeout=2)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def links(self):
        return {n["id"]: n["link"] for n in json.loads(self.ok("--json", "nic", "details"))}

    def wait_for(self, condition, timeout=60, what=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.02)
        self.fail("timed out waiting for %s\n%s" % (what or condition, self.daemon.log()[-3000:]))

    def test_killed_or_restarted_under_traffic_it_comes_back_from_its_journal_and_traffic_resumes(self):
        self.ok("sg", "rule", "add", "udp9", "--ip-proto", "udp", "--port", "9", "--cidr", "198.18.0.0/24")
        sockets = {nic: os.path.join(self.tmp.name, "vm-%s.sock" % nic) for nic in MACS}
        # testpmd's txonly frames: UDP 198.18.0.1:9 -> 198.18.0.2:9, to the --eth-peer MAC.
        receiver = TestpmdVm(self, sockets["vb"], MACS["vb"], "rxonly", server=True)
        sender = TestpmdVm(self, sockets["va"], MACS["va"], "txonly", ["--eth-peer=0," + MACS["vb"]], server=True)
        self.wait_for(lambda: all(os.path.exists(s) for s in sockets.values()), what="the VMs' sockets")
        for nic, ip in (("va", "198.18.0.1"), ("vb", "198.18.0.2")):
            self.ok("nic", "add", "--id", nic, "--mac", MACS[nic], "--vni", "1", "--ip", ip, "--sg", "udp9",
                    "--type", "vhost-client", "--path", sockets[nic])
        self.wait_for(lambda: self.links() == {"va": "connected", "vb": "connected"}, what="both links up")
        receiver.command("start")
        sender.command("start")
        self.wait_for(lambda: (self.stats("vb") or {}).get("packets_out", 0) > 1000, what="traffic")
        before = self.dump()

        resume_seconds = []
        for round_number in range(ROUNDS):
            how = "kill -9" if round_number % 2 == 0 else "clean stop"
            received_before = receiver.port_rx_packets()
            stopped = self.restart_daemon(how, self.args, self.state_file)
            answering = time.monotonic()
            # Its counters start again from 0: the first frame out of vb is traffic resumed.
            self.wait_for(lambda: (self.stats("vb") or {}).get("packets_out", 0) > 0, timeout=60,
                          what="traffic after the %s" % how)
            resumed = time.monotonic()
            resume_seconds.append(resumed - stopped)
            print("round %d, %s: answering after %.3f s, traffic resumed after %.3f s" % (
                round_number + 1, how, answering - stopped, resumed - stopped))
            self.assertEqual(self.dump(), before, "the state after the %s is the state before" % how)
            self.assertEqual(self.links(), {"va": "connected", "vb": "connected"})
            # The receiving VM itself gets frames again, and the group still applies: nothing dropped
            # by the filter on this allowed flow.
            self.wait_for(lambda: receiver.port_rx_packets() > received_before + 1000,
                          what="the receiving VM to get frames after the %s" % how)
            self.assertEqual(self.stats("vb")["drops"]["filter"], 0)
            self.assertEqual(self.stats("va")["drops"]["filter"], 0)
        print("traffic resumed after a restart in %.3f s (median of %d rounds), %.3f s at most" % (
            statistics.median(resume_seconds), len(resume_seconds), max(resume_seconds)))

        # The VMs did nothing through all of it, and are still sending and receiving.
        sender.finish()
        receiver.finish()
        self.assertGreater(receiver.counter("RX-packets"), 0)
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log()[-3000:])
