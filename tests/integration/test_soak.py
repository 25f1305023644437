"""Churn under load: VMs keep flows going while the API changes security groups at
BUTTERFLY_SOAK_RATE (1,500) changes per second at most (rules, members, the vnics' group lists, other
vnics' addresses, other vnics added and removed).

- A's flow to B (UDP, echoed back by B) is allowed by every version of the policy: not one of
  its packets, nor of its echoes, is lost.
- C's flow to B is allowed by a rule that is removed and re-added every 0.6 s: no packet C sent
  10 ms or more after the removal was acknowledged reaches B (CUT_LIMIT: a removal cuts its
  flows within 10 ms of its answer),
  and packets flow again after each re-add.
- butterflyd neither crashes nor grows: after the soak, with the state back to what it was, its
  RSS is within 5% of its RSS after the warm-up.

It prints the changes per second, the gaps between arrivals of A's flow (p50, p99, max), the cut
latencies and RSS over time. `make test` runs it for BUTTERFLY_SOAK_SECONDS=20 (after a 10 s
warm-up); `make soak` for 600."""
import json
import os
import random
import subprocess
import sys
import time

from harness import BUILD_DIR, DaemonTestCase
from netlab import NetLab

SECONDS = float(os.environ.get("BUTTERFLY_SOAK_SECONDS", "20"))
WARMUP = float(os.environ.get("BUTTERFLY_SOAK_WARMUP", "10"))
RATE = float(os.environ.get("BUTTERFLY_SOAK_RATE", "1500"))
FLOW_PPS = 1000
CUT_LIMIT = 0.010
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak_tools.py")
PYTHON = "/usr/bin/python3"
CUT_RULE = {"protocol": 17, "ports": (7001, 7001), "cidr": "198.18.0.3/32"}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


class ChurnSoakTest(DaemonTestCase):
    daemon_args = None

    def setUp(self):
        super().setUp()
        self.daemon = self.start_daemon(args=("--dpdk-args", "--no-pci", "--workers", "1"),
                                        state_file=os.path.join(self.tmp.name, "state.journal"))
        self.lab = NetLab(self)

    def vm(self, suffix, address, last_mac_byte, groups):
        nic = self.lab.name(suffix)
        self.ok("nic", "add", "--id", nic, "--mac", "52:54:00:00:2a:%02x" % last_mac_byte, "--vni", "42",
                "--ip", address, "--type", "tap", *sum((["--sg", g] for g in groups), []))
        namespace = self.lab.netns(suffix)
        self.lab.move(nic, namespace, address + "/24")
        return nic, namespace

    def tool(self, namespace, *args):
        command = [PYTHON, TOOLS] + [str(a) for a in args]
        env = dict(os.environ, BUTTERFLY_BUILD_DIR=os.path.abspath(BUILD_DIR))
        if namespace:
            return self.lab.popen(namespace, command, env=env, stderr=subprocess.PIPE, text=True)
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        self.lab.processes.append(process)
        return process

    def finish(self, process, what, timeout):
        _, errors = process.communicate(timeout=timeout)
        self.assertEqual(process.returncode, 0, "%s failed: %s" % (what, errors))

    def load(self, name):
        with open(os.path.join(self.tmp.name, name)) as f:
            return json.load(f)

    def test_established_flows_survive_a_thousand_changes_a_second_and_a_removed_rule_cuts_at_once(self):
        self.ok("sg", "rule", "add", "base", "--ip-proto", "udp", "--port", "7000", "--cidr", "198.18.0.1/32")
        self.ok("sg", "rule", "add", "cut", "--ip-proto", "udp", "--port", "7001", "--cidr", "198.18.0.3/32")
        a, ns_a = self.vm("sa", "198.18.0.1", 1, ["base"])
        b, ns_b = self.vm("sb", "198.18.0.2", 2, ["base", "cut"])
        c, ns_c = self.vm("sc", "198.18.0.3", 3, ["base"])
        # No ARP during the run: every frame on C's TAP is one of its flow's packets.
        b_mac = json.loads(self.ok("--json", "nic", "details", b))[0]["mac"]
        for namespace in (ns_a, ns_c):
            self.lab.run(namespace, ["ip", "neigh", "replace", "198.18.0.2", "lladdr", b_mac, "dev",
                                     a if namespace == ns_a else c, "nud", "permanent"])
        self.lab.run(ns_b, ["ip", "neigh", "replace", "198.18.0.1", "lladdr",
                            json.loads(self.ok("--json", "nic", "details", a))[0]["mac"], "dev", b,
                            "nud", "permanent"])
        path = lambda name: os.path.join(self.tmp.name, name)
        stop = path("stop")
        sinks = [self.tool(ns_b, "sink", 7000, stop, path("sink-7000.json"), "echo"),
                 self.tool(ns_b, "sink", 7001, stop, path("sink-7001.json"))]
        time.sleep(0.5)
        flow = self.tool(ns_a, "flow", "198.18.0.2", 7000, FLOW_PPS, stop, path("flow.json"))
        cut = self.tool(ns_c, "cut", self.daemon.endpoint, "198.18.0.2", 7001, FLOW_PPS, "cut", c,
                        json.dumps(CUT_RULE), stop, path("cut.json"))
        seed = int(os.environ.get("BUTTERFLY_TEST_SEED", random.randrange(1 << 30)))
        print("churn seed %d (rerun with BUTTERFLY_TEST_SEED=%d)" % (seed, seed), file=sys.stderr)
        churn = self.tool(None, "churn", self.daemon.endpoint, self.daemon.process.pid, WARMUP, SECONDS, RATE,
                          seed, json.dumps({a: ["base"], b: ["base", "cut"], c: ["base"]}), path("churn.json"))
        self.finish(churn, "the churn", timeout=WARMUP + SECONDS + 300)
        open(stop, "w").close()
        for process, what in [(flow, "A's flow"), (cut, "C's flow")] + [(s, "B's sink") for s in sinks]:
            self.finish(process, what, timeout=120)
        self.assertIsNone(self.daemon.process.poll(), "butterflyd died during the soak")

        churned, sent, cut_run = self.load("churn.json"), self.load("flow.json"), self.load("cut.json")
        received = self.load("sink-7000.json")
        sequences = {r[1] for r in received}
        gaps = [later[0] - earlier[0] for earlier, later in zip(received, received[1:])]
        marks = churned["marks"]
        changes_per_second = {name: mark["changes"] / mark["seconds"] for name, mark in marks.items()}
        print("churn: %d changes applied; %.0f/s in the warm-up, %.0f/s in the soak (%.0f s); butterflyd "
              "used %.0f%% of a core meanwhile (2 cores, shared with the VMs' and the churn's processes)" % (
                  churned["applied"], changes_per_second["warmup"], changes_per_second["soak"],
                  marks["soak"]["seconds"], 100 * marks["soak"]["daemon_cpu"]))
        print("A -> B, %d packets at %d/s: %d received, %d echoes back; gaps between arrivals p50 %.2f ms, "
              "p99 %.2f ms, max %.2f ms (the sender's own longest gap %.2f ms)" % (
                  sent["sent"], FLOW_PPS, len(sequences), sent["echoed"], percentile(gaps, 0.5) * 1e3,
                  percentile(gaps, 0.99) * 1e3, max(gaps) * 1e3, sent["send_gap_max"] * 1e3))
        print("RSS (KiB) over time: %s" % " ".join("%gs:%d" % (t, kib) for t, kib in churned["rss"]))
        print("RSS after the warm-up %d KiB, after the soak %d KiB (%+.1f%%)" % (
            marks["warmup"]["rss_kib"], marks["soak"]["rss_kib"],
            100.0 * (marks["soak"]["rss_kib"] / marks["warmup"]["rss_kib"] - 1)))

        # C's flow: per removal, the latest send time of a packet that still got through.
        cut_received = self.load("sink-7001.json")
        removed_at = {phase: acknowledged for phase, asked, acknowledged in cut_run["removals"]}
        latencies, late = [], []
        for phase, asked, acknowledged in cut_run["removals"]:
            through = [r[2] - acknowledged for r in cut_received if r[3] == phase]
            latencies.append(max([0.0] + through))
            late += [(phase, round(t * 1e3, 2)) for t in through if t >= CUT_LIMIT]
        allowed_phases = {r[3] for r in cut_received if r[3] % 2 == 0}
        print("C -> B: %d packets sent, %d removals of its rule; a packet sent after the removal's "
              "answer got through at most %.2f ms after it (p50 of removals %.2f ms)" % (
                  cut_run["sent"], len(removed_at), max(latencies) * 1e3, percentile(latencies, 0.5) * 1e3))

        self.assertGreaterEqual(churned["applied"], RATE * (WARMUP + SECONDS) / 4, "the churn hardly ran")
        self.assertEqual(len(sequences), sent["sent"], "A's allowed flow lost packets to B")
        self.assertEqual(sent["echoed"], sent["sent"], "B's echoes of A's flow were lost")
        self.assertEqual(late, [], "packets of C sent %d ms or more after their rule's removal was "
                         "acknowledged got through (phase, ms after)" % (CUT_LIMIT * 1e3))
        self.assertGreater(len(removed_at), 5)
        # Packets flowed again after every re-add (the last one may have had no time to send).
        self.assertGreaterEqual(len(allowed_phases), len(removed_at), "C's flow did not resume after a re-add")
        self.assertLessEqual(marks["soak"]["rss_kib"], marks["warmup"]["rss_kib"] * 1.05,
                             "butterflyd grew by more than 5% over the soak")
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log()[-3000:])
