// What a worker runs for one vnic: an immutable object reached through the vnic's FilterSlot and
// freed only after an RCU grace period. It decides whether the rules allow a packet (through JIT
// code when ready, the interpreter otherwise) and whether a packet from the VM carries one of the
// vnic's addresses; conntrack and the always-allowed traffic are the filter stage's business.
#pragma once

#include <cstdint>
#include <memory>

#include "core/model.h"
#include "jit/infrastructure_traffic.h"
#include "jit/interpreter.h"
#include "jit/jit_compiler.h"
#include "jit/packet_key.h"
#include "jit/rule_ir.h"

namespace butterfly {

enum class ProgramKind : uint8_t {
  kDropAll = 0,  // no policy yet: fail closed
  kBypass = 1,   // bypass_filtering: everything passes, nothing is tracked
  kRules = 2,
};

class FilterProgram {
 public:
  static std::unique_ptr<FilterProgram> DropAll();
  static std::unique_ptr<FilterProgram> Bypass(uint64_t generation);
  static std::unique_ptr<FilterProgram> Interpreted(std::shared_ptr<const FilterIr> ir);
  static std::unique_ptr<FilterProgram> Compiled(std::shared_ptr<const FilterIr> ir,
                                                 std::unique_ptr<CompiledFilter> compiled);

  ProgramKind kind() const { return kind_; }
  // The generation of the policy this program enforces (VnicPolicy::generation).
  uint64_t generation() const { return generation_; }
  bool is_jit() const { return compiled_ != nullptr; }
  const FilterIr* ir() const { return ir_.get(); }

  // kRules only. `key` is an IP packet that is not a non-first fragment.
  bool RulesAllow(Direction direction, const PacketKey& key) const {
    JitMatchFn fn = jit_[DirectionIndex(direction)];
    if (fn) return fn(&key) != 0;
    return InterpretRules(*ir_, direction, key);
  }
  // kRules only: the antispoof check of a packet from the VM.
  bool SourceIsVnicAddress(const PacketKey& key) const {
    return butterfly::SourceIsVnicAddress(ir_->vnic_ips[FamilyIndexOf(key.family)], key.src);
  }

 private:
  FilterProgram(ProgramKind kind, uint64_t generation) : kind_(kind), generation_(generation) {}

  ProgramKind kind_;
  uint64_t generation_;
  JitMatchFn jit_[2] = {nullptr, nullptr};
  std::shared_ptr<const FilterIr> ir_;
  std::unique_ptr<CompiledFilter> compiled_;
};

}  // namespace butterfly
