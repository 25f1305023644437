"""Packet sequences between the VMs of a Config, generated from a seed. Each sequence has its own
source port / ICMP id, so sequences played at the same time never share a conntrack entry."""
import struct

import frames as f
from policy import PORTS


class Step:
    __slots__ = ("sender", "receiver", "frame", "l3", "what")

    def __init__(self, sender, receiver, frame, what):
        self.sender, self.receiver, self.frame, self.what = sender, receiver, frame, what
        self.l3 = f.l3_of(frame)


class Sequence:
    def __init__(self, kind, steps):
        self.kind = kind
        self.steps = steps


class Endpoint:
    def __init__(self, index, vm, family, rng):
        self.index = index
        self.mac = vm.mac
        addresses = vm.v4 if family == 4 else vm.v6
        self.ip = f.ip_bytes(rng.choice(addresses))


class Builder:
    """Frames of one sequence: IP ids / flow labels unique per packet, so every packet's bytes
    differ from every other's (the receiver tells them apart by their bytes)."""

    def __init__(self, family, counter, options=None):
        self.family = family
        self.counter = counter
        self.options = options  # IPv4 options or IPv6 extension-header kind, or None
        self.steps = []

    def next_id(self):
        self.counter[0] += 1
        return self.counter[0]

    def ip(self, src, dst, proto, payload, ident=None, fragment=None):
        ident = self.next_id() if ident is None else ident
        if self.family == 4:
            options = b"\x01\x01\x01\x00" if self.options == "nop" else (
                bytes([7, 7, 4]) + b"\0" * 4 + b"\0" if self.options == "rr" else b"")
            if fragment:
                offset, more = fragment
                return f.ipv4(src, dst, proto, payload, ident, offset=offset, more_fragments=more, options=options)
            return f.ipv4(src, dst, proto, payload, ident, options=options)
        next_header, body = proto, payload
        if fragment:
            offset, more = fragment
            body = f.ipv6_fragment_header(next_header, offset, more, ident) + body
            next_header = 44
        if self.options in ("hbh", "dest"):
            body = f.ipv6_extension(next_header, b"\x01\x02\x00\x00") + body
            next_header = 0 if self.options == "hbh" else 60
        return f.ipv6(src, dst, next_header, body, flow_label=ident)

    def send(self, a, b, proto, payload, what, **kwargs):
        ethertype = f.ETH_IPV4 if self.family == 4 else f.ETH_IPV6
        frame = f.ethernet(b.mac, a.mac, ethertype, self.ip(a.ip, b.ip, proto, payload, **kwargs))
        self.steps.append(Step(a.index, b.index, frame, what))
        return frame

    def tcp(self, a, b, sport, dport, seq, ack, flags, what, data=b""):
        return self.send(a, b, f.TCP, f.tcp(a.ip, b.ip, sport, dport, seq, ack, flags, data), what)

    def udp(self, a, b, sport, dport, what, data=b"x"):
        return self.send(a, b, f.UDP, f.udp(a.ip, b.ip, sport, dport, data), what)

    def echo(self, a, b, ident, seq, request, what):
        if self.family == 4:
            message = f.icmp4(8 if request else 0, 0, struct.pack("!HH", ident, seq), b"ping")
            return self.send(a, b, f.ICMP, message, what)
        message = f.icmp6(a.ip, b.ip, 128 if request else 129, 0, struct.pack("!HH", ident, seq), b"ping")
        return self.send(a, b, f.ICMPV6, message, what)

    def error(self, a, b, quoted_frame, kind, what):
        """An ICMP(v6) error from a to b quoting the IP packet of `quoted_frame`."""
        quote = f.l3_of(quoted_frame)[:548 if self.family == 4 else 1232]
        if self.family == 4:
            icmp_type, code, rest = {"unreachable": (3, 3, b"\0" * 4), "frag_needed": (3, 4, struct.pack("!HH", 0, 1280)),
                                     "time_exceeded": (11, 0, b"\0" * 4)}[kind]
            return self.send(a, b, f.ICMP, f.icmp4(icmp_type, code, rest, quote), what)
        icmp_type, code, rest = {"unreachable": (1, 4, b"\0" * 4), "frag_needed": (2, 0, struct.pack("!I", 1280)),
                                 "time_exceeded": (3, 0, b"\0" * 4)}[kind]
        return self.send(a, b, f.ICMPV6, f.icmp6(a.ip, b.ip, icmp_type, code, rest, quote), what)


def tcp_sequence(rng, b, a, z, sport, dport):
    """Handshake, data, then a close in a random order, then late packets."""
    sa, sb = rng.randrange(1 << 32), rng.randrange(1 << 32)
    opener_is_a = rng.random() < 0.8
    x, y = (a, z) if opener_is_a else (z, a)
    b.tcp(x, y, sport, dport, sa, 0, f.SYN, "syn")
    if rng.random() < 0.15:
        b.tcp(x, y, sport, dport, sa, 0, f.SYN, "syn retransmitted")
    if rng.random() < 0.1:
        b.tcp(y, x, dport, sport, sb, 0, f.SYN, "simultaneous syn")
    b.tcp(y, x, dport, sport, sb, sa + 1, f.SYN | f.ACK, "syn-ack")
    b.tcp(x, y, sport, dport, sa + 1, sb + 1, f.ACK, "ack")
    sa, sb = sa + 1, sb + 1
    for _ in range(rng.randint(0, 3)):
        if rng.random() < 0.5:
            b.tcp(x, y, sport, dport, sa, sb, f.ACK | f.PSH, "data", b"hello")
            sa += 5
        else:
            b.tcp(y, x, dport, sport, sb, sa, f.ACK | f.PSH, "data back", b"world")
            sb += 5
    close = rng.choice(["fin-fin", "fin-fin-crossed", "rst-opener", "rst-responder", "fin-rst", "none",
                        "fin-then-data"])
    if close.startswith("fin-fin"):
        b.tcp(x, y, sport, dport, sa, sb, f.FIN | f.ACK, "fin")
        if close == "fin-fin":
            b.tcp(y, x, dport, sport, sb, sa + 1, f.ACK, "ack of fin")
        b.tcp(y, x, dport, sport, sb, sa + 1, f.FIN | f.ACK, "fin back")
        b.tcp(x, y, sport, dport, sa + 1, sb + 1, f.ACK, "last ack")
        sa, sb = sa + 1, sb + 1
    elif close == "rst-opener":
        b.tcp(x, y, sport, dport, sa, sb, f.RST | f.ACK, "rst")
    elif close == "rst-responder":
        b.tcp(y, x, dport, sport, sb, sa, f.RST, "rst back")
    elif close == "fin-rst":
        b.tcp(y, x, dport, sport, sb, sa, f.FIN | f.ACK, "fin from responder")
        b.tcp(x, y, sport, dport, sa, sb + 1, f.RST | f.ACK, "rst after fin")
    elif close == "fin-then-data":
        b.tcp(x, y, sport, dport, sa, sb, f.FIN | f.ACK, "fin")
        b.tcp(y, x, dport, sport, sb, sa + 1, f.ACK | f.PSH, "data after peer's fin", b"late")
    if close != "none" and rng.random() < 0.5:
        late = rng.choice(["data", "data back", "syn again", "ack back"])
        if late == "data":
            b.tcp(x, y, sport, dport, sa, sb, f.ACK | f.PSH, "data after close", b"again")
        elif late == "data back":
            b.tcp(y, x, dport, sport, sb, sa, f.ACK | f.PSH, "data back after close", b"again")
        elif late == "ack back":
            b.tcp(y, x, dport, sport, sb, sa, f.ACK, "ack back after close")
        else:
            b.tcp(x, y, sport, dport, sa + 100000, 0, f.SYN, "syn reusing the ports")
            b.tcp(y, x, dport, sport, sb + 100000, sa + 100001, f.SYN | f.ACK, "syn-ack on reuse")


def tcp_odd_sequence(rng, b, a, z, sport, dport):
    """Invalid flag combinations and packets outside the window."""
    sa, sb = rng.randrange(1 << 32), rng.randrange(1 << 32)
    kind = rng.choice(["flags-first", "flags-after-handshake", "window", "ack-first", "synack-first"])
    odd_flags = rng.choice([f.SYN | f.FIN, f.SYN | f.RST, 0, f.FIN, f.FIN | f.PSH | f.URG, f.SYN | f.FIN | f.ACK,
                            f.RST | f.FIN, f.URG])
    if kind == "flags-first":
        b.tcp(a, z, sport, dport, sa, 0, odd_flags, "odd flags 0x%02x" % odd_flags)
        b.tcp(z, a, dport, sport, sb, sa + 1, f.ACK, "reply to odd flags")
        return
    if kind == "ack-first":
        b.tcp(a, z, sport, dport, sa, sb, f.ACK, "ack without handshake")
        b.tcp(z, a, dport, sport, sb, sa, f.ACK | f.PSH, "reply to mid-stream ack", b"mid")
        return
    if kind == "synack-first":
        b.tcp(a, z, sport, dport, sa, sb, f.SYN | f.ACK, "syn-ack without syn")
        b.tcp(z, a, dport, sport, sb, sa + 1, f.ACK, "ack of unsolicited syn-ack")
        return
    b.tcp(a, z, sport, dport, sa, 0, f.SYN, "syn")
    b.tcp(z, a, dport, sport, sb, sa + 1, f.SYN | f.ACK, "syn-ack")
    b.tcp(a, z, sport, dport, sa + 1, sb + 1, f.ACK, "ack")
    if kind == "flags-after-handshake":
        b.tcp(a, z, sport, dport, sa + 1, sb + 1, odd_flags, "odd flags 0x%02x in flow" % odd_flags)
        b.tcp(z, a, dport, sport, sb + 1, sa + 1, f.ACK | f.PSH, "data back", b"ok")
    else:
        shift = rng.choice([1 << 30, 1 << 31, 3 << 30])
        if rng.random() < 0.5:
            b.tcp(a, z, sport, dport, sa + 1 + shift, sb + 1, f.ACK | f.PSH, "data outside the window", b"far")
        else:
            b.tcp(z, a, dport, sport, sb + 1 + shift, sa + 1, f.ACK | f.PSH, "data back outside the window", b"far")
        b.tcp(a, z, sport, dport, sa + 1, sb + 1, f.ACK | f.PSH, "data in the window", b"near")


def udp_sequence(rng, b, a, z, sport, dport):
    pattern = rng.choice(["ab", "aba", "ba", "abab", "aa"])
    for i, who in enumerate(pattern):
        if who == "a":
            b.udp(a, z, sport, dport, "udp %d" % i)
        else:
            b.udp(z, a, dport, sport, "udp back %d" % i)


def echo_sequence(rng, b, a, z, ident, _):
    pattern = rng.choice(["request-reply", "reply-only", "collide", "two-ids", "request-request"])
    if pattern == "request-reply":
        b.echo(a, z, ident, 1, True, "echo request")
        b.echo(z, a, ident, 1, False, "echo reply")
        b.echo(z, a, ident, 2, False, "second echo reply")
    elif pattern == "reply-only":
        b.echo(a, z, ident, 1, False, "unsolicited echo reply")
    elif pattern == "collide":
        # The same id both ways: B's request is not a reply to A's.
        b.echo(a, z, ident, 1, True, "echo request")
        b.echo(z, a, ident, 1, True, "echo request back, same id")
        b.echo(a, z, ident, 1, False, "echo reply to it")
    elif pattern == "two-ids":
        b.echo(a, z, ident, 1, True, "echo request")
        b.echo(z, a, (ident + 0x8000) & 0xFFFF, 1, False, "echo reply with another id")
    else:
        b.echo(a, z, ident, 1, True, "echo request")
        b.echo(a, z, ident, 2, True, "echo request again")
        b.echo(z, a, ident, 2, False, "echo reply")


def icmp_error_sequence(rng, b, a, z, sport, dport, third):
    """An error about a flow: from the peer, or from a third VM acting as a router (PMTUD)."""
    proto = rng.choice(["udp", "tcp", "echo"])
    if proto == "udp":
        opened = b.udp(a, z, sport, dport, "udp that the error quotes")
    elif proto == "tcp":
        opened = b.tcp(a, z, sport, dport, 1000, 0, f.SYN, "syn that the error quotes")
    else:
        opened = b.echo(a, z, sport, 1, True, "echo request that the error quotes")
    kind = rng.choice(["unreachable", "frag_needed", "frag_needed", "time_exceeded"])
    source = rng.choice(["peer", "peer", "router", "unallowed"])
    if source == "peer":
        b.error(z, a, opened, kind, "%s from the peer, quoting an allowed flow" % kind)
    elif source == "router" and third is not None:
        b.error(third, a, opened, kind, "%s from a router, quoting the flow" % kind)
    else:
        # Quotes a flow that was never sent (other ports): unrelated.
        other = Builder(b.family, b.counter, None)
        other_frame = other.udp(a, z, sport, (dport + 7) % 65536 or 1, "never sent")
        b.error(z, a, other_frame, kind, "%s quoting a flow never seen" % kind)


def fragment_sequence(rng, b, a, z, sport, dport):
    """A UDP datagram in fragments (first, non-first, overlapping, out of order), then a reply."""
    data = bytes(rng.randrange(256) for _ in range(40))
    segment = f.udp(a.ip, z.ip, sport, dport, data)  # 48 bytes: three fragments of 16
    ident = b.next_id()
    pieces = [(0, segment[:16], True), (16, segment[16:32], True), (32, segment[32:], False)]
    order = rng.choice(["in-order", "reversed", "first-only", "non-first-only", "overlap", "duplicate"])
    if order == "reversed":
        pieces.reverse()
    elif order == "first-only":
        pieces = pieces[:1]
    elif order == "non-first-only":
        pieces = pieces[1:]
    elif order == "overlap":
        pieces.insert(2, (8, segment[8:24], True))
    elif order == "duplicate":
        pieces.insert(1, pieces[0])
    proto = f.UDP
    for offset, payload, more in pieces:
        b.send(a, z, proto, payload, "fragment at %d (%s)" % (offset, order), ident=ident, fragment=(offset, more))
    b.udp(z, a, dport, sport, "reply to the fragmented datagram")


def neighbour_sequence(rng, b, a, z):
    """ARP or NDP between two VMs, honest: passes both sides whatever the rules."""
    if b.family == 4:
        frame = f.ethernet("ff:ff:ff:ff:ff:ff", a.mac, f.ETH_ARP, f.arp(1, a.mac, _ip(a.ip), "00:00:00:00:00:00", _ip(z.ip)))
        b.steps.append(Step(a.index, z.index, frame, "arp request"))
        reply = f.ethernet(a.mac, z.mac, f.ETH_ARP, f.arp(2, z.mac, _ip(z.ip), a.mac, _ip(a.ip)))
        b.steps.append(Step(z.index, a.index, reply, "arp reply"))
        return
    option = b"\x01\x01" + f.mac_bytes(a.mac)
    solicit = f.icmp6(a.ip, z.ip, 135, 0, b"\0" * 4, z.ip + option)
    frame = f.ethernet(z.mac, a.mac, f.ETH_IPV6, f.ipv6(a.ip, z.ip, f.ICMPV6, solicit, hop_limit=255))
    b.steps.append(Step(a.index, z.index, frame, "neighbour solicitation"))
    option = b"\x02\x01" + f.mac_bytes(z.mac)
    advert = f.icmp6(z.ip, a.ip, 136, 0, b"\x60\0\0\0", z.ip + option)
    frame = f.ethernet(a.mac, z.mac, f.ETH_IPV6, f.ipv6(z.ip, a.ip, f.ICMPV6, advert, hop_limit=255))
    b.steps.append(Step(z.index, a.index, frame, "neighbour advertisement"))


def _ip(packed):
    import ipaddress
    return str(ipaddress.ip_address(packed))


KINDS = [("tcp", 30), ("tcp-odd", 15), ("udp", 15), ("echo", 12), ("icmp-error", 15), ("fragments", 8),
         ("neighbour", 5)]


def make_sequence(rng, config, index, counter):
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    family = rng.choice([4, 6])
    ia, iz = rng.sample(range(len(config.vms)), 2)
    third_index = next(i for i in range(len(config.vms)) if i not in (ia, iz))
    a = Endpoint(ia, config.vms[ia], family, rng)
    z = Endpoint(iz, config.vms[iz], family, rng)
    third = Endpoint(third_index, config.vms[third_index], family, rng)
    options = None
    if kind in ("tcp", "udp") and rng.random() < 0.15:
        options = rng.choice(["nop", "rr"] if family == 4 else ["hbh", "dest"])
    b = Builder(family, counter, options)
    sport = 10000 + index  # unique per sequence in a seed
    chance = rng.random()
    if chance < 0.5 and config.rule_ports:
        dport = rng.choice(config.rule_ports)
    elif chance < 0.9:
        dport = rng.choice(PORTS)
    else:
        dport = rng.randrange(1, 65536)
    if kind == "tcp":
        tcp_sequence(rng, b, a, z, sport, dport)
    elif kind == "tcp-odd":
        tcp_odd_sequence(rng, b, a, z, sport, dport)
    elif kind == "udp":
        udp_sequence(rng, b, a, z, sport, dport)
    elif kind == "echo":
        echo_sequence(rng, b, a, z, sport, None)
    elif kind == "icmp-error":
        icmp_error_sequence(rng, b, a, z, sport, dport, third)
    elif kind == "fragments":
        fragment_sequence(rng, b, a, z, sport, dport)
    else:
        neighbour_sequence(rng, b, a, z)
    name = kind + ("/v%d" % family) + ("/" + options if options else "")
    return Sequence(name, b.steps)
