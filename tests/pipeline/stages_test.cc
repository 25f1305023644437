// Packet stages on frames in mbufs built in plain memory (the stages only move data_off and the
// lengths): cases the fuzz targets (tests/fuzz) found. (The flow hash at every alignment, the
// other packet finding, is tested in frame_test.cc.)
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "pipeline/frame.h"
#include "pipeline/vxlan_decap.h"

namespace butterfly {
namespace {

// An mbuf whose data room holds `frame` at `offset` past the headroom.
class TestMbuf {
 public:
  explicit TestMbuf(const std::vector<uint8_t>& frame, uint16_t offset = 0)
      : block_(sizeof(rte_mbuf) + RTE_PKTMBUF_HEADROOM + offset + frame.size()) {
    auto* mbuf = get();
    std::memset(mbuf, 0, sizeof(rte_mbuf));
    mbuf->buf_addr = block_.data() + sizeof(rte_mbuf);
    mbuf->buf_len = static_cast<uint16_t>(block_.size() - sizeof(rte_mbuf));
    mbuf->data_off = static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + offset);
    mbuf->data_len = static_cast<uint16_t>(frame.size());
    mbuf->pkt_len = static_cast<uint32_t>(frame.size());
    mbuf->nb_segs = 1;
    std::memcpy(rte_pktmbuf_mtod(mbuf, uint8_t*), frame.data(), frame.size());
  }
  rte_mbuf* get() { return reinterpret_cast<rte_mbuf*>(block_.data()); }

 private:
  std::vector<uint8_t> block_;
};

UnderlayInfo Ipv4Underlay() {
  UnderlayInfo underlay;
  underlay.present = true;
  underlay.vtep_ip = VtepOfIpv4(htonl(0xc6120001));  // 198.18.0.1
  return underlay;
}

// A VXLAN packet (VNI 42) from 198.18.0.2 to 198.18.0.1 carrying a 14-byte inner frame.
std::vector<uint8_t> VxlanPacket(uint16_t ether_type) {
  std::vector<uint8_t> packet(14 + 20 + 8 + 8 + 14, 0);
  packet[12] = static_cast<uint8_t>(ether_type >> 8);
  packet[13] = static_cast<uint8_t>(ether_type);
  uint8_t* ip = packet.data() + 14;
  ip[0] = 0x45;
  uint16_t total = htons(20 + 8 + 8 + 14);
  std::memcpy(ip + 2, &total, 2);
  ip[8] = 64;
  ip[9] = 17;
  const uint8_t addresses[8] = {198, 18, 0, 2, 198, 18, 0, 1};
  std::memcpy(ip + 12, addresses, 8);
  uint16_t checksum = ChecksumFinish(ChecksumAdd(ip, 20));
  std::memcpy(ip + 10, &checksum, 2);
  uint8_t* udp = ip + 20;
  udp[2] = 4789 >> 8;
  udp[3] = 4789 & 0xff;
  udp[5] = 8 + 8 + 14;
  udp[8] = 0x08;  // VXLAN I flag
  udp[14] = 42;   // VNI 42 in the three bytes after the flags word
  return packet;
}

TEST(VxlanDecapTest, OnlyAnIpv4FrameIsAnIpv4Tunnel) {
  DecapResult result;
  DropReason reason;
  TestMbuf tunnel(VxlanPacket(kEthTypeIpv4));
  ASSERT_TRUE(VxlanDecap(tunnel.get(), Ipv4Underlay(), &result, &reason));
  EXPECT_EQ(result.vni, 42u);
  EXPECT_EQ(tunnel.get()->data_len, 14u);
  for (uint16_t ether_type : {uint16_t{0x00c6}, kEthTypeVlan, kEthTypeArp, kEthTypeIpv6}) {
    TestMbuf other(VxlanPacket(ether_type));
    EXPECT_FALSE(VxlanDecap(other.get(), Ipv4Underlay(), &result, &reason)) << ether_type;
    EXPECT_EQ(reason, DropReason::kNotVxlan);
  }
}

}  // namespace
}  // namespace butterfly
