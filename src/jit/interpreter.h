// The reference interpreter: the simplest correct reading of the rule IR, one rule and one prefix
// after the other. It is the oracle of the differential tests, the filter in force while a JIT
// compile is in flight, and the filter when the JIT is disabled (--no-jit).
#pragma once

#include "core/model.h"
#include "jit/packet_key.h"
#include "jit/rule_ir.h"

namespace butterfly {

// True when a rule of `direction` allows `key` (an IPv4 or IPv6 packet that is not a non-first
// fragment). The remote address is the source inbound and the destination outbound. Antispoof,
// always-allowed infrastructure traffic and conntrack are decided around this call.
bool InterpretRules(const FilterIr& ir, Direction direction, const PacketKey& key);

}  // namespace butterfly
