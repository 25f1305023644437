// Frames in mbufs built in plain memory, for the packet target: the stages under test only move
// data_off and the lengths, so they need no mempool and no EAL.
#pragma once

#include <rte_mbuf.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

namespace butterfly::fuzz {

// An mbuf and its data room in one heap block that ends exactly where the room does, so that
// AddressSanitizer reports a read past the room. Stages that only adjust offsets and lengths
// (parse, decap, the ARP/NDP responders, antispoof) need no mempool and no EAL.
class PlainMbuf {
 public:
  static constexpr uint16_t kHeadroom = RTE_PKTMBUF_HEADROOM;

  // The frame is placed after the headroom; `tailroom` bytes of room follow it.
  PlainMbuf(std::string_view frame, uint16_t tailroom = 0) {
    size_t room = kHeadroom + frame.size() + tailroom;
    block_.reset(static_cast<uint8_t*>(std::malloc(sizeof(rte_mbuf) + room)));
    auto* mbuf = reinterpret_cast<rte_mbuf*>(block_.get());
    std::memset(mbuf, 0, sizeof(rte_mbuf));
    mbuf->buf_addr = block_.get() + sizeof(rte_mbuf);
    mbuf->buf_len = static_cast<uint16_t>(room);
    mbuf->data_off = kHeadroom;
    mbuf->data_len = static_cast<uint16_t>(frame.size());
    mbuf->pkt_len = static_cast<uint32_t>(frame.size());
    mbuf->nb_segs = 1;
    mbuf->refcnt = 1;
    if (!frame.empty()) std::memcpy(Data(), frame.data(), frame.size());
  }

  rte_mbuf* get() { return reinterpret_cast<rte_mbuf*>(block_.get()); }
  uint8_t* Data() { return rte_pktmbuf_mtod(get(), uint8_t*); }
  std::string_view View() {
    return std::string_view(reinterpret_cast<const char*>(Data()), get()->data_len);
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> block_;
};

}  // namespace butterfly::fuzz
