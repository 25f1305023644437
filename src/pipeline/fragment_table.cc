#include "pipeline/fragment_table.h"

#include <bit>
#include <cstring>

namespace butterfly {

FragmentTable::FragmentTable(uint32_t slots, uint64_t lifetime_ticks)
    : slots_(std::bit_ceil(std::max<uint32_t>(slots, 1))),
      mask_(slots_.size() - 1),
      lifetime_ticks_(lifetime_ticks) {}

size_t FragmentTable::SlotOf(const PacketKey& key, uint32_t vnic) const {
  uint64_t a, b;
  std::memcpy(&a, key.src.data() + 8, 8);
  std::memcpy(&b, key.dst.data() + 8, 8);
  uint64_t c, d;
  std::memcpy(&c, key.src.data(), 8);
  std::memcpy(&d, key.dst.data(), 8);
  uint64_t h = (a ^ (b * 31) ^ (c * 131) ^ (d * 8191) ^ (uint64_t{key.fragment_id} << 20) ^ vnic ^
                key.proto) *
               0x9e3779b97f4a7c15ULL;
  return (h >> 32) & mask_;
}

bool FragmentTable::Same(const Datagram& d, const PacketKey& key, uint32_t vnic,
                         Direction direction) {
  return d.id == key.fragment_id && d.vnic == vnic && d.proto == key.proto &&
         d.family == key.family && d.direction == static_cast<uint8_t>(direction) &&
         d.src == key.src && d.dst == key.dst;
}

void FragmentTable::Remember(const PacketKey& key, uint32_t vnic, Direction direction,
                             uint64_t now) {
  Datagram& d = slots_[SlotOf(key, vnic)];
  d.src = key.src;
  d.dst = key.dst;
  d.id = key.fragment_id;
  d.vnic = vnic;
  d.proto = key.proto;
  d.family = key.family;
  d.direction = static_cast<uint8_t>(direction);
  d.expires = now + lifetime_ticks_;
}

bool FragmentTable::Allowed(const PacketKey& key, uint32_t vnic, Direction direction,
                            uint64_t now) const {
  const Datagram& d = slots_[SlotOf(key, vnic)];
  return d.expires > now && Same(d, key, vnic, direction);
}

}  // namespace butterfly
