#!/usr/bin/python3
"""The reference oracle: plays random security-group configurations and packet sequences through
Butterfly and through a Linux reference (bridges + nftables + conntrack, see topology.py), and
compares, packet by packet, whether each one reached its destination VM.

    oracle.py [--seeds 1,2,3] [--sequences N] [--packets N] [--verbose]

Every difference is either one of the named INTENDED differences (Butterfly's semantics, stated
in the README) and counted as such, or unexplained: then the run fails and prints the sequence."""
import argparse
import json
import os
import random
import select
import signal
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import frames as f  # noqa: E402
import policy  # noqa: E402
import topology  # noqa: E402
import traffic  # noqa: E402

# Sequences in flight at once (each sends one packet per round). A round ends when every VM has
# seen every other VM's marker (a broadcast ARP sent after its packets of the round): both
# switches forward a port's frames in order, so by then each packet of the round has been
# delivered or dropped, however slow the machine. MARKER_TIMEOUT_S bounds the wait.
CONCURRENT = 192
MARKER_TIMEOUT_S = 5.0
# Butterfly applies a new policy within milliseconds, not before the API call returns.
CONFIGURE_SETTLE_S = 0.5

# Every difference the harness accepts, by name: (reference, what differs). The README's
# "Security-group semantics vs Linux conntrack" states each one. A sequence's first difference
# names its class; the later differences of that sequence follow from it (the two sides no
# longer hold the same state) and are counted in the same class.
INTENDED = {
    "fragment-by-fragment": (
        "README: fragment-by-fragment",
        "Butterfly filters each fragment as it comes (the first by its ports, the others by the "
        "first's verdict) and the VM reassembles; Linux reassembles before filtering. A first "
        "fragment alone opens the flow in Butterfly, never in Linux; overlapping fragments pass "
        "Butterfly, Linux discards the datagram."),
}
# Known gaps (differences nobody intends, each waiting for its fix), listed as INTENDED is. None
# remain since TCP sequence and window tracking (src/pipeline/conntrack.cc, CheckWindow).
KNOWN = {}


def classify(sequence, first, verdicts):
    """The name of the difference class that explains a sequence's first difference, or None."""
    if sequence.kind.split("/")[0] == "fragments":
        return "fragment-by-fragment"
    return None


class Outcome:
    def __init__(self):
        self.packets = 0
        self.delivered_both = 0
        self.sequences = 0
        self.by_class = {}
        self.unexplained = []

    def add(self, sequence, verdicts):
        self.sequences += 1
        self.packets += len(sequence.steps)
        self.delivered_both += sum(1 for butterfly, kernel in verdicts if butterfly and kernel)
        differ = [i for i, (butterfly, kernel) in enumerate(verdicts) if butterfly != kernel]
        if not differ:
            return
        name = classify(sequence, differ[0], verdicts)
        if name is None:
            self.unexplained.extend((sequence, verdicts, sequence.steps[i]) for i in differ)
        else:
            self.by_class[name] = self.by_class.get(name, 0) + len(differ)


def tcp_ports(l3):
    """'sport>dport' of an unfragmented TCP packet (to find it in a capture), else ''."""
    if l3[0] >> 4 == 4 and l3[9] == 6:
        header = (l3[0] & 15) * 4
    elif l3[0] >> 4 == 6 and l3[6] == 6:
        header = 40
    else:
        return ""
    return "%d>%d" % (int.from_bytes(l3[header:header + 2], "big"), int.from_bytes(l3[header + 2:header + 4], "big"))


def describe(sequence, verdicts, config):
    lines = ["sequence %s:" % sequence.kind]
    for step, (butterfly, kernel) in zip(sequence.steps, verdicts):
        mark = "  " if butterfly == kernel else "!!"
        ports = tcp_ports(step.l3)
        lines.append("  %s vm%d -> vm%d %-48s %-11s butterfly=%s kernel=%s" % (
            mark, step.sender, step.receiver, step.what, ports, "delivered" if butterfly else "dropped",
            "delivered" if kernel else "dropped"))
    return "\n".join(lines)


class Oracle:
    def __init__(self, workdir):
        self.lab = topology.Lab(workdir)
        probe = policy.Config(0, self.lab.tag)
        self.macs = [vm.mac for vm in probe.vms]
        self.round = 0
        self.marker_timeouts = 0
        try:
            self.butterfly = topology.ButterflySide(self.lab, probe.vms)
            self.kernel = topology.KernelSide(self.lab, probe.vms)
            self.warm_up()
        except BaseException:
            self.lab.cleanup()
            raise

    def warm_up(self):
        """Marker rounds until every VM hears every other on both networks: by then the switch
        has resolved the remote host's VTEP address, and no frame of a sequence is lost to that."""
        sides = (self.butterfly.sockets, self.kernel.sockets)
        for _ in range(20):
            self.round += 1
            self.collect(sides, ({}, {}), self.send_markers(sides))
            if self.marker_timeouts == 0:
                return
            self.marker_timeouts = 0
        raise RuntimeError("the VMs never all heard each other's markers")

    def close(self):
        self.lab.cleanup()

    def butterfly_losses(self):
        """Frames Butterfly lost for reasons other than the policy (queues, buffers): each one
        would show as a false difference."""
        lost = {}
        for nic in self.butterfly.nics:
            drops = json.loads(self.butterfly.cli(["--json", "nic", "stats", nic]))["drops"]
            for reason, count in drops.items():
                if reason not in ("filter", "antispoof") and count:
                    lost[reason] = lost.get(reason, 0) + count
        return lost

    def run_seed(self, seed, sequences, outcome, verbose=False):
        config = policy.Config(seed, self.lab.tag)
        # The VMs keep their MACs (the switches' tables know them): only addresses and SGs change.
        probe = policy.Config(0, self.lab.tag)
        for vm, first in zip(config.vms, probe.vms):
            vm.mac = first.mac
        self.butterfly.configure(config)
        self.kernel.configure(config)
        time.sleep(CONFIGURE_SETTLE_S)
        rng = random.Random(seed * 7919 + 1)
        counter = [seed * 1000003]
        pending = [traffic.make_sequence(rng, config, i, counter) for i in range(sequences)]
        pending.reverse()
        sides = (self.butterfly.sockets, self.kernel.sockets)
        active = []  # [sequence, next step, verdicts, rounds left after the last step]
        expected = [{}, {}]  # per side: (receiver, l3) -> (verdicts, step index)
        while pending or active:
            while pending and len(active) < CONCURRENT:
                sequence = pending.pop()
                active.append([sequence, 0, [[False, False] for _ in sequence.steps], 2])
            for entry in active:
                sequence, index, verdicts, _ = entry
                if index < len(sequence.steps):
                    step = sequence.steps[index]
                    for side in (0, 1):
                        expected[side][(step.receiver, step.l3)] = (verdicts, index, side)
                        sides[side][step.sender].send(step.frame)
                    entry[1] += 1
            self.round += 1
            self.collect(sides, expected, self.send_markers(sides))
            still = []
            for entry in active:
                sequence, index, verdicts, linger = entry
                if index >= len(sequence.steps):
                    if linger > 0:  # late deliveries (reassembly) get two more rounds
                        entry[3] -= 1
                        still.append(entry)
                        continue
                    for step in sequence.steps:
                        for side in (0, 1):
                            expected[side].pop((step.receiver, step.l3), None)
                    before = len(outcome.unexplained)
                    outcome.add(sequence, verdicts)
                    if verbose or len(outcome.unexplained) > before:
                        if len(outcome.unexplained) <= 20 or verbose:
                            print("seed %d " % seed + describe(sequence, verdicts, config), flush=True)
                else:
                    still.append(entry)
            active = still

    def send_markers(self, sides):
        """Each VM broadcasts an ARP request whose target address holds the round number; returns
        the set of (side, receiver, sender) markers still to be seen."""
        target = struct.pack("!I", 0xF0000000 | (self.round & 0xFFFFFFF))
        waiting = set()
        for side in (0, 1):
            for sender, sock in enumerate(sides[side]):
                mac = self.macs[sender]
                body = f.arp(1, mac, "0.0.0.0", "00:00:00:00:00:00", "0.0.0.0")[:24] + target
                sock.send(f.ethernet("ff:ff:ff:ff:ff:ff", mac, f.ETH_ARP, body))
                waiting.update((side, receiver, sender) for receiver in range(len(sides[side])) if receiver != sender)
        return waiting

    def collect(self, sides, expected, waiting):
        target = struct.pack("!I", 0xF0000000 | (self.round & 0xFFFFFFF))
        sender_of = {f.mac_bytes(mac): index for index, mac in enumerate(self.macs)}
        deadline = time.monotonic() + MARKER_TIMEOUT_S
        every = [(side, receiver, sock) for side in (0, 1) for receiver, sock in enumerate(sides[side])]
        by_fd = {sock.fileno(): (side, receiver, sock) for side, receiver, sock in every}
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                self.marker_timeouts += 1
                break
            ready, _, _ = select.select(list(by_fd), [], [], left)
            for fd in ready:
                side, receiver, sock = by_fd[fd]
                for frame in topology.drain(sock):
                    if frame[12:14] == b"\x08\x06" and frame[38:42] == target:
                        waiting.discard((side, receiver, sender_of.get(frame[6:12])))
                        continue
                    hit = expected[side].get((receiver, f.l3_of(frame)))
                    if hit:
                        verdicts, index, _ = hit
                        verdicts[index][side] = True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3,4", help="comma-separated seeds (short mode)")
    parser.add_argument("--sequences", type=int, help="sequences per seed (500; long mode 5000)")
    parser.add_argument("--packets", type=int, default=0,
                        help="long mode: seeds 1000, 1001, ... until this many packets are compared")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("oracle: needs root (network namespaces)", file=sys.stderr)
        return 2
    # A timeout's SIGTERM unwinds like an exception: the finally below removes namespaces,
    # links and the daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.sequences is None:
        args.sequences = 5000 if args.packets else 500
    started = time.monotonic()
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="butterfly-oracle-") as workdir:
        oracle = Oracle(workdir)
        try:
            if args.packets:
                seed = 1000
                while outcome.packets < args.packets:
                    oracle.run_seed(seed, args.sequences, outcome, args.verbose)
                    seed += 1
                    print("oracle: %d packets, %d sequences, %.0f s" % (
                        outcome.packets, outcome.sequences, time.monotonic() - started), flush=True)
            else:
                for seed in [int(s) for s in args.seeds.split(",")]:
                    oracle.run_seed(seed, args.sequences, outcome, args.verbose)
            losses = oracle.butterfly_losses()
        finally:
            oracle.close()
    elapsed = time.monotonic() - started
    print("oracle: %d packets in %d sequences compared in %.1f s (%.0f packets/s)" % (
        outcome.packets, outcome.sequences, elapsed, outcome.packets / max(elapsed, 1e-9)))
    print("oracle: delivered by both %d, dropped by both %d, different %d" % (
        outcome.delivered_both, outcome.packets - outcome.delivered_both - sum(outcome.by_class.values())
        - len(outcome.unexplained), sum(outcome.by_class.values()) + len(outcome.unexplained)))
    for label, table in (("intended", INTENDED), ("known", KNOWN)):
        for name in sorted(table):
            print("oracle: %s difference %-24s %8d  (%s)" % (label, name, outcome.by_class.get(name, 0), table[name][0]))
    print("oracle: rounds whose markers timed out %d" % oracle.marker_timeouts)
    print("oracle: butterfly drops other than the policy's %s" % (losses or "none"))
    print("oracle: unexplained differences %d" % len(outcome.unexplained))
    groups = {}
    for sequence, verdicts, step in outcome.unexplained:
        index = sequence.steps.index(step)
        key = "%s | %s | butterfly=%s" % (sequence.kind.split("/")[0], step.what, verdicts[index][0])
        groups[key] = groups.get(key, 0) + 1
    for key, count in sorted(groups.items(), key=lambda item: -item[1]):
        print("oracle:   %6d  %s" % (count, key))
    # Frames lost to a full table or queue are no verdict of the policy: the comparison is void.
    starved = {reason: n for reason, n in losses.items() if reason in ("conntrack_full", "queue_full", "no_buffer")}
    if starved:
        print("oracle: butterfly lost frames to resources, not to the policy: %s" % starved)
    return 1 if outcome.unexplained or starved else 0


if __name__ == "__main__":
    sys.exit(main())
