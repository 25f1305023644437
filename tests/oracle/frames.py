"""Ethernet frames built with struct (scapy is too slow for a million packets): IPv4 with options,
IPv6 with extension headers, TCP, UDP, ICMP, ICMPv6, fragments. Checksums are always correct, so
that Linux conntrack (which checks them) judges the same packet Butterfly does."""
import ipaddress
import struct

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def ip_bytes(address):
    return ipaddress.ip_address(address).packed


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def with_checksum(segment, offset, src, dst, proto):
    value = checksum(pseudo_header(src, dst, proto, len(segment)) + segment)
    if proto == UDP and value == 0:
        value = 0xFFFF
    return segment[:offset] + struct.pack("!H", value) + segment[offset + 2:]


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", window=65535):
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                          window, 0, 0) + payload
    return with_checksum(segment, 16, src, dst, TCP)


def udp(src, dst, sport, dport, payload=b""):
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return with_checksum(segment, 6, src, dst, UDP)


def icmp4(icmp_type, code, rest, payload=b""):
    message = struct.pack("!BBH", icmp_type, code, 0) + rest + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def icmp6(src, dst, icmp_type, code, rest, payload=b""):
    message = struct.pack("!BBH", icmp_type, code, 0) + rest + payload
    return with_checksum(message, 2, src, dst, ICMPV6)


def ipv4(src, dst, proto, payload, ident, ttl=64, more_fragments=False, offset=0, options=b"",
         dont_fragment=False, total_length=None):
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    flags = (0x4000 if dont_fragment else 0) | (0x2000 if more_fragments else 0)
    length = total_length if total_length is not None else 4 * ihl + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident & 0xFFFF, flags | (offset >> 3),
                         ttl, proto, 0, src, dst) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def ipv6(src, dst, next_header, payload, flow_label=0, hop_limit=64, payload_length=None):
    length = payload_length if payload_length is not None else len(payload)
    return struct.pack("!IHBB16s16s", 0x60000000 | (flow_label & 0xFFFFF), length, next_header, hop_limit,
                       src, dst) + payload


def ipv6_extension(next_header, body):
    """A hop-by-hop or destination options header padded to 8 bytes (body: options)."""
    total = 2 + len(body)
    padding = (-total) % 8
    if padding == 1:
        body += b"\0"  # Pad1
    elif padding:
        body += bytes([1, padding - 2]) + b"\0" * (padding - 2)  # PadN
    return bytes([next_header, (2 + len(body)) // 8 - 1]) + body


def ipv6_fragment_header(next_header, offset, more, ident):
    return struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)


def ethernet(dst_mac, src_mac, ethertype, payload):
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype) + payload


def arp(op, sender_mac, sender_ip, target_mac, target_ip):
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, op, mac_bytes(sender_mac), ip_bytes(sender_ip),
                       mac_bytes(target_mac), ip_bytes(target_ip))


def l3_of(frame):
    """The IP packet of a frame, without the Ethernet header or any trailing padding."""
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    body = frame[14:]
    if ethertype == ETH_IPV4 and len(body) >= 20:
        return body[:struct.unpack_from("!H", body, 2)[0]]
    if ethertype == ETH_IPV6 and len(body) >= 40:
        return body[:40 + struct.unpack_from("!H", body, 4)[0]]
    if ethertype == ETH_ARP:
        return body[:28]
    return body
