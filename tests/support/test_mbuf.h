// An mbuf over plain memory, for the stage tests: the stages only move data_off and the lengths
// (decap, encap, antispoof, the ARP/NDP responders), so they need no mempool and no EAL. Never
// give one to rte_pktmbuf_free.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace butterfly::testing {

class TestMbuf {
 public:
  // `frame` after `headroom` bytes, with `tailroom` bytes of room after it. The data room ends
  // where the heap block does, so that AddressSanitizer reports a read or write past it.
  explicit TestMbuf(const std::vector<uint8_t>& frame, uint16_t headroom = RTE_PKTMBUF_HEADROOM,
                    uint16_t tailroom = 0) {
    size_t room = headroom + frame.size() + tailroom;
    // rte_mbuf is cache-line aligned: the block starts on a line (UBSan checks member accesses)
    // and the room is put at its end.
    size_t size = (sizeof(rte_mbuf) + room + 63) / 64 * 64;
    block_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, size)));
    auto* mbuf = get();
    std::memset(mbuf, 0, sizeof(rte_mbuf));
    mbuf->buf_addr = block_.get() + size - room;
    mbuf->buf_len = static_cast<uint16_t>(room);
    mbuf->data_off = headroom;
    mbuf->data_len = static_cast<uint16_t>(frame.size());
    mbuf->pkt_len = static_cast<uint32_t>(frame.size());
    mbuf->nb_segs = 1;
    mbuf->refcnt = 1;
    if (!frame.empty()) std::memcpy(rte_pktmbuf_mtod(mbuf, uint8_t*), frame.data(), frame.size());
  }

  rte_mbuf* get() const { return reinterpret_cast<rte_mbuf*>(block_.get()); }

  // The bytes of the packet, every segment.
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> bytes;
    for (const rte_mbuf* segment = get(); segment; segment = segment->next) {
      const auto* data = rte_pktmbuf_mtod(segment, const uint8_t*);
      bytes.insert(bytes.end(), data, data + segment->data_len);
    }
    return bytes;
  }

  // Makes `tail` (a single segment) this packet's last segment. `tail` must outlive this.
  void Append(TestMbuf* tail) {
    rte_mbuf* last = rte_pktmbuf_lastseg(get());
    last->next = tail->get();
    get()->nb_segs = static_cast<uint16_t>(get()->nb_segs + 1);
    get()->pkt_len += tail->get()->data_len;
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> block_;
};

}  // namespace butterfly::testing
