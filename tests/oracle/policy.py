"""A random security-group configuration from a seed, as Butterfly CLI commands and as the
nftables ruleset that expresses the same policy the way EC2/OpenStack do."""
import ipaddress
import random
from dataclasses import dataclass, field

VM_COUNT = 4  # VMs on the switch under test, each with its groups
# One more VM on another host, reached through the underlay (VXLAN): no group of ours filters it,
# only the local VMs' groups judge its traffic. It is the last of Config.vms.
REMOTE_VMS = 1
PORTS = [22, 53, 80, 443, 1000, 1001, 1005, 1010, 8080, 65535]
ICMPV6_ND_MLD = "130, 131, 132, 133, 134, 135, 136, 137, 143"
ICMPV6_ND = "133, 134, 135, 136, 137"


@dataclass
class Vm:
    mac: str
    v4: list
    v6: list
    sgs: list = field(default_factory=list)
    remote: bool = False  # on another host, behind the underlay: no security group of ours


@dataclass
class Rule:
    direction: str  # in / out
    protocol: str  # tcp udp icmp icmpv6 all or a number
    ports: tuple  # (first, last) or None
    cidr: str = None
    members_of: str = None

    def cli(self, sg):
        command = ["sg", "rule", "add", sg, "--dir", self.direction, "--ip-proto", self.protocol]
        if self.ports or self.protocol in ("tcp", "udp", "6", "17"):
            if not self.ports:
                command += ["--port-start", "0", "--port-end", "65535"]
            elif self.ports[0] == self.ports[1]:
                command += ["--port", str(self.ports[0])]
            else:
                command += ["--port-start", str(self.ports[0]), "--port-end", str(self.ports[1])]
        return command + (["--cidr", self.cidr] if self.cidr else ["--sg-members", self.members_of])

    def protocol_number(self):
        names = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "all": None}
        return names[self.protocol] if self.protocol in names else int(self.protocol)


@dataclass
class Sg:
    id: str
    rules: list
    members: list


class Config:
    def __init__(self, seed, tag):
        rng = random.Random(seed)
        self.seed = seed
        # Each seed has its own addresses: flows of an earlier seed never match this one's.
        subnet = seed % 512
        self.v4_net = ipaddress.ip_network("198.18.0.0/24") .network_address + 256 * subnet
        self.v6_net = "2001:db8:%x::" % subnet
        self.vms = []
        for i in range(VM_COUNT):
            v4 = [str(self.v4_net + 10 + i)]
            v6 = ["%s%x" % (self.v6_net, 0x10 + i)]
            if rng.random() < 0.3:
                v4.append(str(self.v4_net + 100 + i))
            if rng.random() < 0.3:
                v6.append("%s1:%x" % (self.v6_net, i))
            self.vms.append(Vm("52:54:00:0e:%02x:%02x" % (seed % 256, i + 1), v4, v6))
        for i in range(VM_COUNT, VM_COUNT + REMOTE_VMS):
            self.vms.append(Vm("52:54:00:0e:%02x:%02x" % (seed % 256, i + 1), [str(self.v4_net + 10 + i)],
                               ["%s%x" % (self.v6_net, 0x10 + i)], remote=True))
        self.outsider_v4 = str(self.v4_net + 200)
        self.outsider_v6 = self.v6_net + "c8"
        self.sg_ids_ever = [tag + "sg%d" % i for i in range(5)]
        self.sgs = []
        for sg_id in self.sg_ids_ever[:4]:  # the fifth is referenced but never exists
            rules = [self.random_rule(rng) for _ in range(rng.randint(0, 6))]
            members = self.random_members(rng) if rng.random() < 0.8 else []
            self.sgs.append(Sg(sg_id, rules, members))
        if rng.random() < 0.5:
            # A wide-open group in half the configurations: conntrack's own verdicts (invalid
            # flags, states, replies) then decide where the rules would let anything in.
            self.sgs[-1].rules += [Rule("in", "all", None, cidr="0.0.0.0/0"), Rule("in", "all", None, cidr="::/0")]
        for vm in self.local_vms():
            vm.sgs = rng.sample(self.sg_ids_ever, rng.choice([0, 1, 2, 2, 3, 3]))
        self.by_id = {sg.id: sg for sg in self.sgs}
        # Destination ports the rules name: traffic aims at them often, so that allowed flows
        # (and their replies, closes, errors) are as well exercised as denied ones.
        self.rule_ports = sorted({port for sg in self.sgs for rule in sg.rules if rule.ports
                                  for port in (rule.ports[0], rule.ports[1])})

    def local_vms(self):
        return [vm for vm in self.vms if not vm.remote]

    def all_addresses(self):
        return [a for vm in self.vms for a in vm.v4 + vm.v6] + [self.outsider_v4, self.outsider_v6]

    def random_members(self, rng):
        addresses = self.all_addresses()
        return sorted(rng.sample(addresses, rng.randint(1, len(addresses) // 2)))

    def random_rule(self, rng):
        direction = "in" if rng.random() < 0.8 else "out"
        protocol = rng.choice(["tcp", "tcp", "udp", "udp", "icmp", "icmpv6", "all", "6", "17", "1", "58", "132"])
        ports = None
        if protocol in ("tcp", "udp", "6", "17") and rng.random() < 0.8:
            first = rng.choice(PORTS)
            last = first if rng.random() < 0.6 else min(65535, first + rng.choice([1, 5, 10, 1000]))
            ports = (first, last)
        vm = rng.choice(self.vms)
        # Weighted towards prefixes that hold VMs: most rules let something through.
        cidr = rng.choice([
            "0.0.0.0/0", "::/0", "0.0.0.0/0", "::/0", str(self.v4_net) + "/24", self.v6_net + "/64",
            str(self.v4_net) + "/24", self.v6_net + "/64", rng.choice(vm.v4) + "/32",
            rng.choice(vm.v6) + "/128", str(self.v4_net) + "/28", self.v6_net + "/124", "198.19.255.0/24",
            "2001:db8:ffff::/48", None, None])
        if cidr is None:
            return Rule(direction, protocol, ports, members_of=rng.choice(self.sg_ids_ever))
        return Rule(direction, protocol, ports, cidr=str(ipaddress.ip_network(cidr)))

    def rules_of(self, vm):
        return [rule for sg_id in vm.sgs if sg_id in self.by_id for rule in self.by_id[sg_id].rules]

    # --- nftables -------------------------------------------------------------------------

    def nft_rule_lines(self, rule):
        remote = "daddr" if rule.direction == "out" else "saddr"
        if rule.cidr:
            network = ipaddress.ip_network(rule.cidr)
            remotes = [("ip" if network.version == 4 else "ip6", [rule.cidr])]
        else:
            sg = self.by_id.get(rule.members_of)
            members = sg.members if sg else []
            remotes = []
            for family, version in (("ip", 4), ("ip6", 6)):
                chosen = [m for m in members if ipaddress.ip_address(m).version == version]
                if chosen:
                    remotes.append((family, chosen))
        number = rule.protocol_number()
        match = ""
        if number is not None:
            match = " meta l4proto %d" % number
            if rule.ports and number in (6, 17):
                first, last = rule.ports
                match += " th dport %s" % (first if first == last else "%d-%d" % (first, last))
        return ["%s %s { %s }%s accept" % (family, remote, ", ".join(addresses), match)
                for family, addresses in remotes]

    def nft_ruleset(self, index, vm_port, uplink):
        vm = self.vms[index]
        rules = self.rules_of(vm)
        egress_rules = [line for rule in rules if rule.direction == "out" for line in self.nft_rule_lines(rule)]
        ingress_rules = [line for rule in rules if rule.direction == "in" for line in self.nft_rule_lines(rule)]
        outbound_open = not any(rule.direction == "out" for rule in rules)
        return "\n".join([
            "flush ruleset",
            "table inet sg {",
            "  chain prerouting {",
            "    type filter hook prerouting priority 0; policy accept;",
            # br_netfilter gives the bridge, not the port, as the input interface: the source
            # MAC says the side (Butterfly enforces it, and the oracle never spoofs it).
            "    ether saddr %s jump egress" % vm.mac,
            "    ether saddr != %s jump ingress" % vm.mac,
            "  }",
            "  chain egress {",
            # DHCP, DHCPv6, and ND/MLD from link-local or unspecified: before the source check.
            "    meta nfproto ipv4 udp sport 68 udp dport 67 accept",
            "    ip6 saddr fe80::/10 udp sport 546 udp dport 547 accept",
            "    ip6 saddr { fe80::/10, :: } icmpv6 type { %s } accept" % ICMPV6_ND_MLD,
            "    meta nfproto ipv4 ip saddr != { %s } drop" % ", ".join(vm.v4),
            "    meta nfproto ipv6 ip6 saddr != { %s } drop" % ", ".join(vm.v6),
            "    icmpv6 type { %s } accept" % ICMPV6_ND_MLD,
            "    ct state established,related accept",
            "    ct state invalid drop",
        ] + ["    " + line for line in egress_rules] + [
            "    %s" % ("accept" if outbound_open else "drop"),
            "  }",
            "  chain ingress {",
            "    meta nfproto ipv4 udp sport 67 udp dport 68 accept",
            "    udp sport 547 udp dport 546 accept",
            "    icmpv6 type { %s } accept" % ICMPV6_ND,
            "    ct state established,related accept",
            "    ct state invalid drop",
        ] + ["    " + line for line in ingress_rules] + [
            "    drop",
            "  }",
            "}",
            ""])
