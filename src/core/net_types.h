// Addresses as the control plane and the filter engine see them: MAC, IPv4/IPv6, CIDR prefixes.
// Parsing is strict and returns errors a user can act on; formatting is canonical, so that what
// `dump` prints replays to the same state.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace butterfly {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  static Result<MacAddress> Parse(std::string_view text);
  std::string ToString() const;
  bool IsMulticast() const { return bytes[0] & 1; }
  bool IsZero() const { return bytes == std::array<uint8_t, 6>{}; }
  auto operator<=>(const MacAddress&) const = default;
};

enum class IpFamily : uint8_t { kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address. IPv4 is kept in the first 4 bytes, network order.
struct IpAddress {
  IpFamily family = IpFamily::kV4;
  std::array<uint8_t, 16> bytes{};

  static Result<IpAddress> Parse(std::string_view text);
  static IpAddress V4(uint32_t host_order);
  std::string ToString() const;
  bool is_v4() const { return family == IpFamily::kV4; }
  int bit_width() const { return is_v4() ? 32 : 128; }
  uint32_t v4_host_order() const;
  bool IsUnspecified() const;
  bool IsMulticast() const;
  // Zeroes every bit past the first `prefix_length`.
  IpAddress Masked(int prefix_length) const;
  auto operator<=>(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress address;  // always masked: no bits set past prefix_length
  int prefix_length = 0;

  // "10.0.0.0/8", "2001:db8::/32"; host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8).
  static Result<Cidr> Parse(std::string_view text);
  static Result<Cidr> Make(std::string_view address, uint32_t prefix_length);
  std::string ToString() const;
  bool Contains(const IpAddress& ip) const;
  auto operator<=>(const Cidr&) const = default;
};

// Parses a whole decimal number in [min, max]; rejects signs, spaces, and trailing text.
Result<int64_t> ParseInteger(std::string_view text, int64_t min, int64_t max);

}  // namespace butterfly
