#!/usr/bin/python3
"""Two builds of butterflyd, A and B, through the same dataplane rows in alternating turns
(A, B, A, B...), so that the machine's drift over minutes falls on both alike: prints each
round's figures, the ratio B/A of each round and the median of those ratios. Rows: vnic -> vnic
(filtering off; 100 stateful rules; 256 flows through 100 rules), VXLAN encap and decap with 100
rules, 64-byte frames, the measurements of dataplane_bench.py (its --quick durations).
The cycles compared are those of the stages between the ports (the vhost copy in and out moves
with the machine). Asserts nothing.  Usage: dataplane_ab.py BUILD_A BUILD_B [--rounds N]
"""
import os
import sys

sys.argv.append("--quick")  # dataplane_bench reads its options at import
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dataplane_bench as bench  # noqa: E402

ROWS = [
    ("vnic->vnic, filtering off", lambda: bench.measure_vnic_to_vnic(64, None)),
    ("vnic->vnic, 100 rules", lambda: bench.measure_vnic_to_vnic(64, 100)),
    ("vnic->vnic, 256 flows, 100 rules", lambda: bench.measure_vnic_to_vnic(64, 100, True)),
    ("vnic->VXLAN encap, 100 rules", lambda: bench.measure_encap(64, 100)),
    ("VXLAN decap->vnic, 100 rules", lambda: bench.measure_decap(64, 100)),
]


def use(build):
    bench.BUTTERFLYD = os.path.join(build, "src", "butterflyd")
    bench.BUTTERFLY = os.path.join(build, "tools", "butterfly", "butterfly")


# Port stages: their cost is mostly the vhost copy, which moves with the machine's drift.
PORT_STAGES = ("vnic_rx", "vnic_tx", "underlay_rx", "underlay_tx")


def measure(row):
    """(Mpps, cycles per packet of the stages between the ports) of one run of `row`."""
    result = ROWS[row][1]()
    cycles = sum(value for name, value in result[1].items() if name not in PORT_STAGES)
    return result[0], cycles


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def main():
    builds = [a for a in sys.argv[1:] if not a.startswith("--") and not a.isdigit()]
    if len(builds) != 2:
        sys.exit(__doc__)
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    print("A = %s\nB = %s\n%d rounds, each row measured A then B within the round" % (builds[0], builds[1], rounds))
    ratios = {row: [] for row in range(len(ROWS))}
    cycle_ratios = {row: [] for row in range(len(ROWS))}
    for round_number in range(rounds):
        for row, (name, _) in enumerate(ROWS):
            figures = []
            for build in builds:
                use(build)
                figures.append(measure(row))
            (mpps_a, cycles_a), (mpps_b, cycles_b) = figures
            ratio = mpps_b / mpps_a if mpps_a else None
            cycle_ratio = cycles_b / cycles_a if cycles_a and cycles_b else None
            ratios[row].append(ratio)
            cycle_ratios[row].append(cycle_ratio)
            cycles = ("  stage cycles/packet A %.0f B %.0f (B/A %.2f)" % (cycles_a, cycles_b, cycle_ratio)
                      if cycle_ratio else "")
            print("round %d  %-34s A %6.2f Mpps  B %6.2f Mpps  B/A %s%s"
                  % (round_number + 1, name, mpps_a, mpps_b, "%.2f" % ratio if ratio else "-", cycles),
                  flush=True)
    print("\nMedians of the per-round ratios B/A (Mpps: above 1 is faster; cycles per packet of the stages\n"
          "between the ports, the vhost and underlay copies left out: below 1 is cheaper):")
    for row, (name, _) in enumerate(ROWS):
        mpps = median(ratios[row])
        cycles = median(cycle_ratios[row])
        print("  %-34s Mpps %s%s" % (name, "%.2f" % mpps if mpps else "-",
                                     "   stage cycles/packet %.2f" % cycles if cycles else ""))


if __name__ == "__main__":
    main()
