// Compiles the rule IR of one vnic into native code with LLVM ORC (LLJIT). The code is
// specialised on the policy's structure (which families and directions have rules, whether ports
// matter, how many addresses and classes there are): small address sets and port classes become
// inline compares, big ones stay data (FilterTables) that the code indexes through helper calls,
// so neither the code size nor the per-packet work grows linearly with the rule count.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/model.h"
#include "core/result.h"
#include "jit/filter_tables.h"
#include "jit/packet_key.h"
#include "jit/rule_ir.h"

namespace butterfly {

// The generated code's signature: 1 when a rule of the function's direction allows the packet.
using JitMatchFn = uint32_t (*)(const PacketKey* key);

class JitSession;
struct JitCode;

// The code and tables of one compiled policy. Immutable; its destructor frees the code (through
// its ResourceTracker), so it must only be destroyed once no worker can be running it.
class CompiledFilter {
 public:
  ~CompiledFilter();
  CompiledFilter(const CompiledFilter&) = delete;
  CompiledFilter& operator=(const CompiledFilter&) = delete;

  JitMatchFn match(Direction direction) const { return match_[DirectionIndex(direction)]; }
  const FilterTables& tables() const { return *tables_; }
  double compile_ms() const { return compile_ms_; }
  // The size of the object code LLVM emitted for it (an upper bound of its code memory).
  size_t object_bytes() const { return object_bytes_; }

 private:
  friend class JitCompiler;
  CompiledFilter() = default;

  std::unique_ptr<const FilterTables> tables_;
  std::unique_ptr<JitCode> code_;  // declared after the tables: freed before them
  JitMatchFn match_[2] = {nullptr, nullptr};
  double compile_ms_ = 0;
  size_t object_bytes_ = 0;
};

class JitCompiler {
 public:
  struct Options {
    // O2 on the generated IR. The code is small (bounded by the inline limits), so O2 costs
    // little; tests turn it off to compare.
    bool optimize = true;
  };

  static Result<std::unique_ptr<JitCompiler>> Create(Options options);
  ~JitCompiler();

  // Thread-safe. Fails only on an LLVM error, with its message.
  Result<std::unique_ptr<CompiledFilter>> Compile(const FilterIr& ir);

 private:
  JitCompiler(Options options, std::shared_ptr<JitSession> session);

  Options options_;
  std::shared_ptr<JitSession> session_;
};

}  // namespace butterfly
