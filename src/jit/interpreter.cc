#include "jit/interpreter.h"

namespace butterfly {

bool InterpretRules(const FilterIr& ir, Direction direction, const PacketKey& key) {
  if (direction == Direction::kOutbound && ir.outbound_open) return true;
  const IpBytes& remote = direction == Direction::kInbound ? key.src : key.dst;
  for (const IrRule& rule : ir.RulesFor(direction, key.family)) {
    if (!rule.MatchesProtocolAndPort(key.proto, key.dst_port)) continue;
    for (const IpPrefix& prefix : rule.remotes) {
      if (prefix.Contains(remote)) return true;
    }
  }
  return false;
}

}  // namespace butterfly
