#include "core/net_types.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace butterfly {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<MacAddress> MacAddress::Parse(std::string_view text) {
  MacAddress mac;
  // Exactly "xx:xx:xx:xx:xx:xx": 6 pairs of hex digits separated by colons.
  if (text.size() != 17) return Fail("'" + std::string(text) + "' is not a MAC address");
  for (int i = 0; i < 6; ++i) {
    int high = HexDigit(text[i * 3]);
    int low = HexDigit(text[i * 3 + 1]);
    if (high < 0 || low < 0 || (i < 5 && text[i * 3 + 2] != ':')) {
      return Fail("'" + std::string(text) + "' is not a MAC address");
    }
    mac.bytes[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return mac;
}

std::string MacAddress::ToString() const {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return text;
}

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  IpAddress ip;
  std::string copy(text);  // inet_pton needs a terminated string
  if (copy.find('\0') == std::string::npos) {
    if (inet_pton(AF_INET, copy.c_str(), ip.bytes.data()) == 1) {
      ip.family = IpFamily::kV4;
      return ip;
    }
    if (inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) == 1) {
      ip.family = IpFamily::kV6;
      return ip;
    }
  }
  return Fail("'" + copy + "' is not an IPv4 or IPv6 address");
}

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress ip;
  ip.family = IpFamily::kV4;
  ip.bytes[0] = host_order >> 24;
  ip.bytes[1] = host_order >> 16;
  ip.bytes[2] = host_order >> 8;
  ip.bytes[3] = host_order;
  return ip;
}

uint32_t IpAddress::v4_host_order() const {
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 | bytes[3];
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN];
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), text, sizeof(text));
  return text;
}

bool IpAddress::IsUnspecified() const {
  for (int i = 0; i < bit_width() / 8; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

bool IpAddress::IsMulticast() const {
  return is_v4() ? (bytes[0] & 0xf0) == 0xe0 : bytes[0] == 0xff;
}

IpAddress IpAddress::Masked(int prefix_length) const {
  IpAddress masked = *this;
  for (int bit = 0; bit < 128; bit += 8) {
    int keep = prefix_length - bit;
    uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    masked.bytes[bit / 8] &= mask;
  }
  return masked;
}

Result<Cidr> Cidr::Make(std::string_view address, uint32_t prefix_length) {
  auto ip = IpAddress::Parse(address);
  if (!ip)
    return Fail("cidr " + std::string(address) + "/" + std::to_string(prefix_length) + ": " +
                ip.error());
  if (prefix_length > static_cast<uint32_t>(ip->bit_width())) {
    return Fail("cidr " + std::string(address) + "/" + std::to_string(prefix_length) +
                ": mask size must be 0-" + std::to_string(ip->bit_width()));
  }
  Cidr cidr;
  cidr.prefix_length = static_cast<int>(prefix_length);
  cidr.address = ip->Masked(cidr.prefix_length);
  return cidr;
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Fail("'" + std::string(text) + "' is not a CIDR (expected ADDRESS/MASK_SIZE)");
  }
  auto length = ParseInteger(text.substr(slash + 1), 0, 128);
  if (!length) {
    return Fail("'" + std::string(text) + "' is not a CIDR: mask size " + length.error());
  }
  return Make(text.substr(0, slash), static_cast<uint32_t>(*length));
}

std::string Cidr::ToString() const {
  return address.ToString() + "/" + std::to_string(prefix_length);
}

bool Cidr::Contains(const IpAddress& ip) const {
  return ip.family == address.family && ip.Masked(prefix_length) == address;
}

Result<int64_t> ParseInteger(std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      (text[0] == '-' && min >= 0)) {
    return Fail("'" + std::string(text) + "' is not a whole number");
  }
  if (value < min || value > max) {
    return Fail("'" + std::string(text) + "' is out of range " + std::to_string(min) + "-" +
                std::to_string(max));
  }
  return value;
}

}  // namespace butterfly
