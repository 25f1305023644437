"""Malformed and mutated Ethernet frames, built from a few templates by byte slicing (no scapy:
a million frames must take seconds), deterministic for a seed. Also the classifier that decides
whether a frame that reached the receiving VM was one its security group allows.

The receiving VM's policy (see test_hostile.py): inbound TCP to port 80 from ALLOWED_V4, UDP to
port 53 from ALLOWED_V6, nothing else; replies to what it sent (it sends nothing)."""
import random
import socket
import struct

ALLOWED_V4 = "198.18.0.1"
ALLOWED_V6 = "2001:db8::1"
RECEIVER_V4 = "198.18.0.2"
RECEIVER_V6 = "2001:db8::2"
ALLOWED_TCP_PORT = 80
ALLOWED_UDP6_PORT = 53

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_RARP, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x0806, 0x8035, 0x8100, 0x88A8
IPV6_EXTENSIONS = (0, 43, 44, 51, 60)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def ipv4(src, dst, proto, payload, ident=1, fragment=0, options=b"", ttl=64):
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, fragment, ttl, proto,
                         0, socket.inet_aton(src), socket.inet_aton(dst)) + options
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def ipv6(src, dst, next_header, payload, hop_limit=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload


def tcp(sport, dport, flags=0x02, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(type_, code, rest, body=b""):
    header = struct.pack("!BBH", type_, code, 0) + rest + body
    return header[:2] + struct.pack("!H", checksum(header)) + header[4:]


def arp(op, sender_mac, sender_ip, target_ip, ether_type=ETH_ARP):
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, op, sender_mac, socket.inet_aton(sender_ip),
                       b"\0" * 6, socket.inet_aton(target_ip))


def ethernet(dst, src, ether_type, payload):
    return dst + src + struct.pack("!H", ether_type) + payload


class Mutator:
    """Frames from one VM-like source (`src_mac`, `src_v4`, `src_v6`) to a receiver (`dst_mac`):
    templates that the receiver's policy allows and forbids, and mutations of them."""

    def __init__(self, seed, src_mac, dst_mac, other_macs, src_v4=ALLOWED_V4, src_v6=ALLOWED_V6):
        self.random = random.Random(seed)
        self.src_mac = mac_bytes(src_mac)
        self.dst_mac = mac_bytes(dst_mac)
        self.other_macs = [mac_bytes(m) for m in other_macs]
        self.src_v4, self.src_v6 = src_v4, src_v6
        self.templates = self.make_templates()

    def make_templates(self):
        s, d = self.src_v4, RECEIVER_V4
        s6, d6 = self.src_v6, RECEIVER_V6
        quote_allowed = ipv4(d, s, 6, tcp(ALLOWED_TCP_PORT, 40000))[:28]
        payloads = [
            (ETH_IPV4, ipv4(s, d, 6, tcp(40000, ALLOWED_TCP_PORT, payload=b"x" * 20))),  # allowed
            (ETH_IPV4, ipv4(s, d, 6, tcp(40001, ALLOWED_TCP_PORT, flags=0x10, payload=b"y" * 40))),  # allowed
            (ETH_IPV4, ipv4(s, d, 6, tcp(40002, 22))),
            (ETH_IPV4, ipv4(s, d, 17, udp(40003, ALLOWED_TCP_PORT, b"u" * 12))),
            (ETH_IPV4, ipv4(s, d, 1, icmp(8, 0, struct.pack("!HH", 7, 1), b"p" * 32))),
            (ETH_IPV4, ipv4(s, d, 1, icmp(3, 3, b"\0" * 4, quote_allowed))),  # error quoting our "reply"
            (ETH_IPV4, ipv4(s, d, 1, icmp(11, 0, b"\0" * 4, bytes(28)))),  # error quoting garbage
            (ETH_IPV4, ipv4(s, d, 6, tcp(40004, ALLOWED_TCP_PORT), options=b"\x94\x04\0\0")),  # router alert
            (ETH_IPV4, ipv4(s, d, 6, tcp(40005, ALLOWED_TCP_PORT, payload=b"f" * 16), ident=77, fragment=0x2000)),
            (ETH_IPV4, ipv4(s, d, 6, b"g" * 16, ident=77, fragment=3)),  # its second fragment
            (ETH_IPV4, ipv4(s, d, 6, b"h" * 16, ident=78, fragment=3)),  # an orphan fragment
            (ETH_IPV6, ipv6(s6, d6, 17, udp(40006, ALLOWED_UDP6_PORT, b"q" * 16))),  # allowed
            (ETH_IPV6, ipv6(s6, d6, 17, udp(40007, 54, b"q" * 16))),
            (ETH_IPV6, ipv6(s6, d6, 0, struct.pack("!BB", 60, 0) + b"\x01\x04\0\0\0\0" +
                            struct.pack("!BB", 17, 0) + b"\x01\x04\0\0\0\0" + udp(40008, ALLOWED_UDP6_PORT, b"e"))),
            (ETH_IPV6, ipv6(s6, d6, 44, struct.pack("!BBHI", 17, 0, 1, 99) + udp(40009, ALLOWED_UDP6_PORT, b"r" * 8))),
            (ETH_IPV6, ipv6(s6, d6, 44, struct.pack("!BBHI", 17, 0, 2 << 3, 99) + b"s" * 16)),
            (ETH_IPV6, ipv6(s6, d6, 58, icmp(128, 0, struct.pack("!HH", 9, 1), b"p" * 16))),
            (ETH_IPV6, ipv6(s6, d6, 58, icmp(1, 4, b"\0" * 4, ipv6(d6, s6, 17, udp(ALLOWED_UDP6_PORT, 40006, b"q"))))),
            (ETH_IPV6, ipv6(s6, d6, 58, icmp(3, 0, b"\0" * 4, bytes(range(48))))),  # quoting garbage
            (ETH_IPV6, ipv6(s6, "ff02::1:ff00:2", 58, icmp(135, 0, b"\0" * 4, socket.inet_pton(
                socket.AF_INET6, d6) + b"\x01\x01" + self.src_mac), hop_limit=255)),
            (ETH_IPV6, ipv6(s6, "ff02::1", 58, icmp(136, 0, b"\x20\0\0\0", socket.inet_pton(
                socket.AF_INET6, s6) + b"\x02\x01" + self.src_mac), hop_limit=255)),
            (ETH_ARP, arp(1, self.src_mac, s, d)),
            (ETH_ARP, arp(2, self.src_mac, s, d)),
            (ETH_RARP, arp(3, self.src_mac, s, d)),
        ]
        return [(ether_type, payload) for ether_type, payload in payloads]

    def frame(self, ether_type, payload, dst=None, src=None):
        return ethernet(dst or self.dst_mac, src or self.src_mac, ether_type, payload)

    def truncations(self):
        """Every template cut at every length, header and all."""
        for ether_type, payload in self.templates:
            whole = self.frame(ether_type, payload)
            for length in range(len(whole)):
                yield whole[:length]

    def mutation(self):
        r = self.random
        ether_type, payload = r.choice(self.templates)
        kind = r.randrange(14)
        dst, src = self.dst_mac, self.src_mac
        payload = bytearray(payload)
        if kind == 0 and ether_type == ETH_IPV4:  # IPv4 total length lies
            struct.pack_into("!H", payload, 2, r.randrange(65536))
        elif kind == 0 and ether_type == ETH_IPV6:  # IPv6 payload length lies
            struct.pack_into("!H", payload, 4, r.randrange(65536))
        elif kind == 1 and ether_type == ETH_IPV4:  # IHL lies, or options of random bytes
            if r.random() < 0.5:
                payload[0] = 0x40 | r.randrange(16)
            else:
                words = r.randrange(1, 11)
                options = bytes(r.randrange(256) for _ in range(words * 4))
                payload = bytearray(bytes([0x40 | (5 + words)]) + bytes(payload[1:20]) + options + bytes(payload[20:]))
                struct.pack_into("!H", payload, 2, len(payload))
        elif kind == 2:  # an IPv6 extension header chain of random headers
            chain = [r.choice(IPV6_EXTENSIONS) for _ in range(r.randrange(1, 12))]
            next_header = r.choice((6, 17, 58, 59, r.randrange(256)))
            if next_header == 17:
                body = udp(40010, ALLOWED_UDP6_PORT, b"c")
            else:
                body = bytes(r.randrange(256) for _ in range(12))
            for header in reversed(chain):
                if header == 44:
                    body = struct.pack("!BBHI", next_header, 0, r.randrange(65536), r.randrange(4)) + body
                elif header == 51:
                    length = r.randrange(4)
                    body = struct.pack("!BB", next_header, length) + bytes((length + 2) * 4 - 2) + body
                else:
                    length = r.randrange(3)
                    body = struct.pack("!BB", next_header, length) + bytes((length + 1) * 8 - 2) + body
                next_header = header
            ether_type = ETH_IPV6
            payload = bytearray(ipv6(r.choice((self.src_v6, ALLOWED_V6)), RECEIVER_V6, next_header, body))
            if r.random() < 0.3:
                struct.pack_into("!H", payload, 4, r.randrange(65536))
        elif kind == 3:  # VLAN or QinQ tags before the real ether type
            tags = b"".join(struct.pack("!HH", r.choice((ETH_VLAN, ETH_QINQ)), r.randrange(4096))
                            for _ in range(r.randrange(1, 3)))
            return dst + src + tags + struct.pack("!H", ether_type) + bytes(payload)
        elif kind == 4:  # runt
            return self.frame(ether_type, bytes(payload))[:r.randrange(60)]
        elif kind == 5:  # jumbo: a 9 KB frame (the IP lengths say so, or lie)
            padding = bytes(r.randrange(256) for _ in range(64)) * 138
            payload = bytearray(bytes(payload) + padding)
            if ether_type == ETH_IPV4 and r.random() < 0.5:
                struct.pack_into("!H", payload, 2, min(len(payload), 65535))
        elif kind == 6:  # an ICMP error quoting garbage, or the allowed flow reversed
            quote = bytes(r.randrange(256) for _ in range(r.randrange(0, 64)))
            if r.random() < 0.5:
                quote = ipv4(RECEIVER_V4, self.src_v4, 6, tcp(ALLOWED_TCP_PORT, r.choice((40000, 40001))))[:28]
            ether_type = ETH_IPV4
            payload = bytearray(ipv4(self.src_v4, RECEIVER_V4, 1, icmp(r.choice((3, 4, 5, 11, 12)), r.randrange(16),
                                                                       b"\0" * 4, quote)))
        elif kind == 7:  # spoofed source MAC
            src = r.choice(self.other_macs + [bytes([r.randrange(256) for _ in range(6)])])
        elif kind == 8 and ether_type in (ETH_IPV4, ETH_IPV6):  # spoofed source IP
            if ether_type == ETH_IPV4:
                payload[12:16] = bytes([198, 18, r.randrange(4), r.randrange(256)])
                payload[10:12] = b"\0\0"
                struct.pack_into("!H", payload, 10, checksum(bytes(payload[:(payload[0] & 15) * 4])))
            else:
                payload[8:24] = socket.inet_pton(socket.AF_INET6, "2001:db8::%x" % r.randrange(1, 65536))
        elif kind == 9:  # spoofed ARP / NDP
            if r.random() < 0.5:
                ether_type = r.choice((ETH_ARP, ETH_ARP, ETH_RARP))
                sender = r.choice(self.other_macs + [self.src_mac])
                payload = bytearray(arp(r.randrange(1, 5), sender, "198.18.%d.%d" % (r.randrange(2), r.randrange(256)),
                                        RECEIVER_V4))
            else:
                ether_type = ETH_IPV6
                lladdr = r.choice(self.other_macs + [self.src_mac])
                target = r.choice((RECEIVER_V6, self.src_v6, "2001:db8::%x" % r.randrange(65536), "fe80::1"))
                option = struct.pack("!BB", r.choice((1, 2)), r.choice((0, 1, 1, 1, 2))) + lladdr
                payload = bytearray(ipv6(self.src_v6, "ff02::1", 58, icmp(r.choice((133, 134, 135, 136, 137)), 0,
                                                                          b"\0" * 4,
                                                                          socket.inet_pton(socket.AF_INET6, target) +
                                                                          option), hop_limit=255))
        elif kind == 10:  # random bytes overwritten anywhere past the MACs
            for _ in range(r.randrange(1, 5)):
                if payload:
                    payload[r.randrange(len(payload))] = r.randrange(256)
            if r.random() < 0.3:
                ether_type = r.randrange(65536)
        elif kind == 11:  # the destination: broadcast, multicast, the sender itself, unknown
            dst = r.choice((b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x01", b"\x33\x33\x00\x00\x00\x01",
                            self.src_mac, bytes([0x02, r.randrange(256), 0, 0, 0, r.randrange(256)])))
        elif kind == 12:  # truncated at a random length
            return self.frame(ether_type, bytes(payload))[:r.randrange(14, 14 + len(payload) + 1)]
        elif kind == 13:  # TCP flags, all 256 combinations, ports at random
            if ether_type == ETH_IPV4 and payload[9] == 6 and len(payload) >= 40:
                payload[(payload[0] & 15) * 4 + 13] = r.randrange(256)
                if r.random() < 0.5:
                    struct.pack_into("!H", payload, (payload[0] & 15) * 4 + 2, r.randrange(65536))
        return self.frame(ether_type, bytes(payload), dst, src)

    def frames(self, count):
        """`count` frames: every template truncated at every length first, then mutations."""
        out = []
        for frame in self.truncations():
            if len(out) == count:
                return out
            out.append(frame)
        while len(out) < count:
            out.append(self.mutation())
        return out


def vxlan_wrap(inner, vni, outer_src_mac, outer_dst_mac, outer_src, outer_dst, vxlan_port=4789,
               flags=0x08000000, source_port=50000):
    payload = struct.pack("!II", flags, vni << 8) + inner
    packet = ipv4(outer_src, outer_dst, 17, udp(source_port, vxlan_port, payload))
    return ethernet(outer_dst_mac, outer_src_mac, ETH_IPV4, packet)


def underlay_frames(count, seed, vni, unknown_vni, inner_src_macs, receiver_mac, other_macs, outer_src_mac,
                    vtep_mac, outer_src, vtep):
    """Tunnel packets for `vni` whose inner frames are Mutator's, and packets whose outer headers
    are mutated (truncated at every length, lying lengths, options, wrong port, flags, VNI, VLAN
    tags, fragments; ARP to and about the VTEP)."""
    r = random.Random(seed ^ 0x5A5A)
    other_mac_bytes = [mac_bytes(m) for m in other_macs]
    mutators = [Mutator(seed + i, mac, receiver_mac, other_macs) for i, mac in enumerate(inner_src_macs)]
    good = vxlan_wrap(mutators[0].frame(*mutators[0].templates[0]), vni, outer_src_mac, vtep_mac, outer_src, vtep)
    out = [good[:length] for length in range(len(good))]
    while len(out) < count:
        inner = r.choice(mutators).mutation()
        kind = r.randrange(10)
        packet = bytearray(vxlan_wrap(inner, vni, outer_src_mac, vtep_mac, outer_src, vtep,
                                      source_port=r.randrange(49152, 65536)))
        if kind == 0:
            struct.pack_into("!H", packet, 16, r.randrange(65536))  # outer total length lies
        elif kind == 1:
            packet[14] = 0x40 | r.randrange(16)  # outer IHL lies
        elif kind == 2:
            struct.pack_into("!H", packet, 36, r.choice((4790, 8472, 0, r.randrange(65536))))  # not VXLAN
        elif kind == 3:
            struct.pack_into("!I", packet, 42, r.randrange(1 << 32))  # VXLAN flags
        elif kind == 4:
            struct.pack_into("!I", packet, 46, (r.choice((unknown_vni, r.randrange(1 << 24))) << 8))
        elif kind == 5:
            tag = struct.pack("!HH", r.choice((ETH_VLAN, ETH_QINQ)), r.randrange(4096))
            packet = packet[:12] + tag + packet[12:]
        elif kind == 6:
            struct.pack_into("!H", packet, 20, r.choice((0x2000, 0x0001, 0x4000, r.randrange(65536))))  # fragments
        elif kind == 7:
            packet = packet[:r.randrange(len(packet))]
        elif kind == 8:
            sender = r.choice(other_mac_bytes + [outer_src_mac])
            packet = bytearray(ethernet(r.choice((b"\xff" * 6, vtep_mac)), sender, ETH_ARP,
                                        arp(r.randrange(0, 4), sender, r.choice((outer_src, vtep, "198.18.100.%d" %
                                                                                r.randrange(256))), vtep)))
            if r.random() < 0.3:
                packet = packet[:r.randrange(len(packet))]
        elif kind == 9:
            packet = packet[:14] + bytes([0x45]) + packet[15:]
            options = bytes([1, 1, 1, 1]) * r.randrange(1, 4)
            header_len = 20 + len(options)
            ip = bytearray(packet[14:34]) + options + packet[34:]
            ip[0] = 0x40 | header_len // 4
            struct.pack_into("!H", ip, 2, len(ip))
            struct.pack_into("!H", ip, 10, 0)
            struct.pack_into("!H", ip, 10, checksum(bytes(ip[:header_len])))
            packet = packet[:14] + ip
        out.append(bytes(packet))
    return out[:count]


# --- Classification of what reached the receiving VM ---------------------------------------------

def _ipv6_upper(packet):
    """(protocol, l4 offset, fragment id or None, non-first fragment, is a fragment: more
    fragments or an offset) after the extension headers of an IPv6 packet, or None when the chain
    does not parse (the switch refuses those)."""
    end = 40 + struct.unpack_from("!H", packet, 4)[0]
    if end > len(packet):
        return None
    next_header, offset, fragment_id, non_first, fragment = packet[6], 40, None, False, False
    for _ in range(9):
        if next_header not in IPV6_EXTENSIONS:
            return next_header, offset, fragment_id, non_first, fragment
        if offset + 8 > end:
            return None
        if next_header == 44:
            off_flags, fragment_id = struct.unpack_from("!HI", packet, offset + 2)
            non_first = (off_flags >> 3) != 0
            fragment = non_first or bool(off_flags & 1)
            length = 8
        elif next_header == 51:
            length = (packet[offset + 1] + 2) * 4
        else:
            length = (packet[offset + 1] + 1) * 8
        next_header = packet[offset]
        offset += length
        if offset > end:
            return None
        if non_first:
            return next_header, offset, fragment_id, True, True
    return None


class Classifier:
    """Sorts frames that arrived at the receiving VM. An arrival the policy forbids is a bypass.
    Allowed:
      - IPv4 TCP from ALLOWED_V4 to port 80 (not a non-first fragment); its non-first fragments
        whose (src, dst, id) an allowed first fragment that arrived earlier had;
      - IPv6 UDP from ALLOWED_V6 to port 53 after the extension headers, and likewise fragments;
      - ICMP and ICMPv6 errors quoting a packet of a flow allowed before, sent back by the
        receiver (related, as Linux conntrack);
      - DHCP replies and neighbour discovery (ICMPv6 133-137, not fragmented), which pass
        whatever the rules (README: infrastructure traffic);
      - ARP (the security group does not govern it; the sender's ARP antispoof is checked by
        `arp_senders`, when given: (mac, ip) pairs a sender may claim).
    Everything else (another protocol, port or source, VLAN tags, RARP, non-IP) is a bypass."""

    def __init__(self, arp_senders=None):
        self.arp_senders = arp_senders
        self.counts = {}
        self.bypasses = []
        self.flows = set()  # (family, src, dst, sport, dport, proto) allowed so far
        self.fragments = set()  # (src, dst, id) of allowed first fragments

    def classify(self, frame):
        verdict = self._classify(bytes(frame))
        self.counts[verdict] = self.counts.get(verdict, 0) + 1
        if verdict.startswith("BYPASS") and len(self.bypasses) < 20:
            self.bypasses.append((verdict, bytes(frame).hex()))
        return verdict

    def _classify(self, frame):
        if len(frame) < 14:
            return "BYPASS runt"
        ether_type = struct.unpack_from("!H", frame, 12)[0]
        packet = frame[14:]
        if ether_type == ETH_ARP:
            if len(packet) < 28:
                return "BYPASS short arp"
            if self.arp_senders is not None:
                sender = (packet[8:14], packet[14:18])
                if sender[0] not in [m for m, _ in self.arp_senders] or (
                        sender[1] != b"\0\0\0\0" and sender not in self.arp_senders):
                    return "BYPASS spoofed arp"
            return "arp"
        if ether_type == ETH_IPV4:
            return self._ipv4(packet)
        if ether_type == ETH_IPV6:
            return self._ipv6(packet)
        return "BYPASS ether type 0x%04x" % ether_type

    def _ipv4(self, packet):
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return "BYPASS bad ipv4"
        header = (packet[0] & 15) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        if header < 20 or total < header or total > len(packet):
            return "BYPASS bad ipv4 lengths"
        ident, fragment = struct.unpack_from("!HH", packet, 4)
        proto, src, dst = packet[9], packet[12:16], packet[16:20]
        if fragment & 0x1FFF:
            if (src, dst, ident) in self.fragments:
                return "tcp80 fragment"
            return "BYPASS ipv4 fragment of no allowed flow"
        l4 = packet[header:total]
        if proto == 6 and src == socket.inet_aton(ALLOWED_V4) and len(l4) >= 4:
            sport, dport = struct.unpack_from("!HH", l4)
            if dport == ALLOWED_TCP_PORT:
                self.flows.add((4, src, dst, sport, dport, 6))
                if fragment & 0x2000:
                    self.fragments.add((src, dst, ident))
                return "tcp80"
        if proto == 1 and len(l4) >= 8 + 24 and l4[0] in (3, 4, 5, 11, 12):
            inner = l4[8:]
            inner_header = (inner[0] & 15) * 4
            if inner[0] >> 4 == 4 and inner_header >= 20 and len(inner) >= inner_header + 4:
                isport, idport = struct.unpack_from("!HH", inner, inner_header)
                # The quoted packet travelled the other way: the receiver sent it.
                if (4, inner[16:20], inner[12:16], idport, isport, inner[9]) in self.flows:
                    return "icmp error related"
        if proto == 17 and len(l4) >= 4 and struct.unpack_from("!HH", l4) == (67, 68):
            return "dhcp reply"
        return "BYPASS ipv4 proto %d from %s" % (proto, socket.inet_ntoa(src))

    def _ipv6(self, packet):
        if len(packet) < 40 or packet[0] >> 4 != 6:
            return "BYPASS bad ipv6"
        upper = _ipv6_upper(packet)
        if upper is None:
            return "BYPASS bad ipv6 chain"
        proto, offset, fragment_id, non_first, fragment = upper
        src, dst = packet[8:24], packet[24:40]
        if non_first:
            if (src, dst, fragment_id) in self.fragments:
                return "udp53 fragment"
            return "BYPASS ipv6 fragment of no allowed flow"
        end = 40 + struct.unpack_from("!H", packet, 4)[0]
        if proto == 17 and src == socket.inet_pton(socket.AF_INET6, ALLOWED_V6) and end - offset >= 4:
            sport, dport = struct.unpack_from("!HH", packet, offset)
            if dport == ALLOWED_UDP6_PORT:
                self.flows.add((6, src, dst, sport, dport, 17))
                if fragment_id is not None:
                    self.fragments.add((src, dst, fragment_id))
                return "udp53"
        if proto == 58 and not fragment and end - offset >= 8 + 44 and 1 <= packet[offset] <= 4:
            inner = packet[offset + 8:end]
            if inner[0] >> 4 == 6:
                isport, idport = struct.unpack_from("!HH", inner, 40)
                if (6, inner[24:40], inner[8:24], idport, isport, inner[6]) in self.flows:
                    return "icmpv6 error related"
        if proto == 58 and not fragment and end - offset >= 1 and 133 <= packet[offset] <= 137:
            return "neighbour discovery"
        if proto == 17 and end - offset >= 4 and struct.unpack_from("!HH", packet, offset) == (547, 546):
            return "dhcpv6 reply"
        return "BYPASS ipv6 proto %d" % proto
