#include "pipeline/frame.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

namespace butterfly {
namespace {

// Ethernet + IPv6 + UDP, and Ethernet + IPv4 + TCP: the headers the flow hash reads.
std::vector<uint8_t> Ipv6UdpFrame() {
  std::vector<uint8_t> frame(14 + 40 + 8, 0);
  frame[12] = 0x86;
  frame[13] = 0xdd;
  frame[14] = 0x60;
  frame[14 + 6] = 17;  // next header: UDP
  for (int i = 0; i < 32; ++i) frame[14 + 8 + i] = static_cast<uint8_t>(0x20 + i);  // addresses
  frame[54] = 0x9c;  // source port 40000
  frame[55] = 0x40;
  frame[57] = 53;
  return frame;
}

std::vector<uint8_t> Ipv4TcpFrame() {
  std::vector<uint8_t> frame(14 + 20 + 20, 0);
  frame[12] = 0x08;
  frame[14] = 0x45;
  frame[14 + 9] = 6;
  for (int i = 0; i < 8; ++i) frame[14 + 12 + i] = static_cast<uint8_t>(198 + i);  // addresses
  frame[34] = 0x9c;
  frame[35] = 0x40;
  frame[37] = 80;
  return frame;
}

// The hash of `frame` copied `offset` bytes into an 8-byte aligned buffer.
uint32_t HashAt(const std::vector<uint8_t>& frame, size_t offset) {
  alignas(8) std::array<uint8_t, 256> buffer{};
  std::memcpy(buffer.data() + offset, frame.data(), frame.size());
  return InnerFlowHash(buffer.data() + offset, static_cast<uint32_t>(frame.size()));
}

// A frame's headers sit wherever the port put them: the hash reads them at any alignment (it
// used rte_hash_crc's word loads, which UBSan stopped the daemon on at an odd address) and gives
// the same value at every one.
TEST(InnerFlowHash, SameValueAtAnyAlignment) {
  for (const auto& frame : {Ipv6UdpFrame(), Ipv4TcpFrame()}) {
    uint32_t aligned = HashAt(frame, 0);
    for (size_t offset = 1; offset < 8; ++offset)
      EXPECT_EQ(HashAt(frame, offset), aligned) << offset;
  }
}

TEST(InnerFlowHash, DependsOnTheFlow) {
  std::vector<uint8_t> frame = Ipv4TcpFrame();
  uint32_t before = HashAt(frame, 2);
  frame[37] = 81;  // another destination port
  EXPECT_NE(HashAt(frame, 2), before);
  std::vector<uint8_t> other = Ipv6UdpFrame();
  uint32_t v6 = HashAt(other, 2);
  other[14 + 8 + 31] ^= 1;  // another destination address
  EXPECT_NE(HashAt(other, 2), v6);
  // Not IP: the MACs.
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  uint32_t zero_macs = HashAt(arp, 3);
  arp[5] = 1;
  EXPECT_NE(HashAt(arp, 3), zero_macs);
}

}  // namespace
}  // namespace butterfly
