// Remembers, per worker, the IP datagrams whose first fragment passed the filter, so that their
// non-first fragments (which carry no ports) pass too: fragments are filtered as they come and the
// VM reassembles (README: "fragment-by-fragment"). Direct-mapped and bounded: a
// collision evicts the older datagram, whose later fragments are then dropped (fail closed), and
// a non-first fragment that arrives before its first one is dropped as well.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model.h"
#include "jit/packet_key.h"

namespace butterfly {

class FragmentTable {
 public:
  // `slots` is rounded up to a power of two; `lifetime_ticks` bounds how long after its first
  // fragment a datagram's other fragments are let through.
  FragmentTable(uint32_t slots, uint64_t lifetime_ticks);

  void Remember(const PacketKey& key, uint32_t vnic, Direction direction, uint64_t now);
  bool Allowed(const PacketKey& key, uint32_t vnic, Direction direction, uint64_t now) const;

 private:
  struct alignas(64) Datagram {
    IpBytes src{};
    IpBytes dst{};
    uint32_t id = 0;
    uint32_t vnic = 0;
    uint8_t proto = 0;
    uint8_t family = 0;
    uint8_t direction = 0;
    uint64_t expires = 0;  // 0: free
  };

  size_t SlotOf(const PacketKey& key, uint32_t vnic) const;
  static bool Same(const Datagram& d, const PacketKey& key, uint32_t vnic, Direction direction);

  std::vector<Datagram> slots_;
  size_t mask_;
  uint64_t lifetime_ticks_;
};

}  // namespace butterfly
