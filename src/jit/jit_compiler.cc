#include "jit/jit_compiler.h"

#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectTransformLayer.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include <bit>
#include <chrono>
#include <cstddef>
#include <mutex>

#include "core/log.h"

namespace butterfly {

// One LLJIT for all the filters of a process: creating one costs more than compiling a filter.
class JitSession {
 public:
  // Guards `jit` (adding, looking up and removing code). Recursive: a failed compile frees its
  // partial code while holding it.
  std::recursive_mutex mutex;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  uint64_t next_module = 0;
  size_t object_bytes = 0;  // of the objects emitted since the last reset (mutex held)
};

struct JitCode {
  std::shared_ptr<JitSession> session;
  llvm::orc::ResourceTrackerSP tracker;

  ~JitCode() {
    if (!tracker) return;
    std::lock_guard lock(session->mutex);
    // Dropping the tracker alone would leave the code mapped: remove() frees it.
    if (llvm::Error error = tracker->remove()) {
      LOG_ERROR("filter jit: freeing compiled code failed: %s",
                llvm::toString(std::move(error)).c_str());
    }
  }
};

namespace {

// Beyond these, address sets and port classes stay in FilterTables and the code calls into them:
// the limits bound the generated code whatever the rule count.
constexpr size_t kInlineAddressLimit = 16;  // host addresses + intervals compared inline
constexpr size_t kInlineClassLimit = 16;
constexpr size_t kInlineRangesPerClass = 8;
constexpr int kInlineWholeProtocols = 4;  // more become a 256-bit bitmap lookup

// Called by the generated code; plain integer signatures so the calls need no ABI subtleties.
uint32_t CallClassOfV4(const RuleSetTables* tables, uint32_t address) {
  return ClassOfV4(*tables, address);
}
uint32_t CallClassOfV6(const RuleSetTables* tables, uint64_t high, uint64_t low) {
  return ClassOfV6(*tables, high, low);
}
uint32_t CallClassAllows(const RuleSetTables* tables, uint32_t klass, uint32_t proto,
                         uint32_t port) {
  return ClassAllows(*tables, klass, static_cast<uint8_t>(proto), static_cast<uint16_t>(port));
}

class FilterCodegen {
 public:
  FilterCodegen(llvm::LLVMContext& context, llvm::Module& module, const FilterIr& ir,
                const FilterTables& tables)
      : context_(context), module_(module), ir_(ir), tables_(tables), builder_(context) {}

  void EmitMatch(Direction direction, const std::string& name) {
    auto* fn_type = llvm::FunctionType::get(i32(), {ptr()}, false);
    fn_ = llvm::Function::Create(fn_type, llvm::Function::ExternalLinkage, name, module_);
    key_ = fn_->getArg(0);
    builder_.SetInsertPoint(NewBlock("entry"));
    if (direction == Direction::kOutbound && ir_.outbound_open) {
      builder_.CreateRet(builder_.getInt32(1));
      return;
    }
    llvm::BasicBlock* deny = NewBlock("not_ip");
    llvm::BasicBlock* v4 = NewBlock("v4");
    llvm::BasicBlock* v6 = NewBlock("v6");
    llvm::Value* family = LoadKeyField(builder_.getInt8Ty(), offsetof(PacketKey, family));
    llvm::SwitchInst* by_family = builder_.CreateSwitch(family, deny, 2);
    by_family->addCase(builder_.getInt8(4), v4);
    by_family->addCase(builder_.getInt8(6), v6);
    builder_.SetInsertPoint(deny);
    builder_.CreateRet(builder_.getInt32(0));
    const auto& sets = tables_.sets[DirectionIndex(direction)];
    builder_.SetInsertPoint(v4);
    EmitRuleSet(sets[kV4Index], direction);
    builder_.SetInsertPoint(v6);
    EmitRuleSet(sets[kV6Index], direction);
  }

 private:
  llvm::Type* i32() { return builder_.getInt32Ty(); }
  llvm::Type* i64() { return builder_.getInt64Ty(); }
  llvm::PointerType* ptr() { return llvm::PointerType::get(context_, 0); }
  llvm::BasicBlock* NewBlock(const char* name) {
    return llvm::BasicBlock::Create(context_, name, fn_);
  }
  llvm::Value* LoadKeyField(llvm::Type* type, size_t offset) {
    llvm::Value* at = builder_.CreateConstInBoundsGEP1_64(builder_.getInt8Ty(), key_, offset);
    return builder_.CreateLoad(type, at);
  }
  llvm::Value* HostPointer(const void* p) {
    return llvm::ConstantExpr::getIntToPtr(builder_.getInt64(reinterpret_cast<uint64_t>(p)), ptr());
  }
  llvm::Value* Swap(llvm::Value* v) {
    return builder_.CreateUnaryIntrinsic(llvm::Intrinsic::bswap, v);
  }

  void EmitRuleSet(const RuleSetTables& set, Direction direction) {
    if (set.empty) {
      builder_.CreateRet(builder_.getInt32(0));
      return;
    }
    size_t remote =
        direction == Direction::kInbound ? offsetof(PacketKey, src) : offsetof(PacketKey, dst);
    llvm::Value* klass = set.family == 4 ? EmitClassOfV4(set, remote) : EmitClassOfV6(set, remote);
    bool all_everything = true;
    for (size_t k = 1; k < set.classes.size(); ++k) {
      all_everything = all_everything && set.classes[k].AllowsEverything();
    }
    if (all_everything) {
      llvm::Value* found = builder_.CreateICmpNE(klass, builder_.getInt32(kNoClass));
      builder_.CreateRet(builder_.CreateZExt(found, i32()));
      return;
    }
    llvm::Value* proto = LoadKeyField(builder_.getInt8Ty(), offsetof(PacketKey, proto));
    llvm::Value* port = LoadKeyField(builder_.getInt16Ty(), offsetof(PacketKey, dst_port));
    if (ClassesFitInline(set)) {
      EmitInlineClasses(set, klass, proto, port);
      return;
    }
    llvm::BasicBlock* none = NewBlock("no_class");
    llvm::BasicBlock* check = NewBlock("class_check");
    builder_.CreateCondBr(builder_.CreateICmpEQ(klass, builder_.getInt32(kNoClass)), none, check);
    builder_.SetInsertPoint(none);
    builder_.CreateRet(builder_.getInt32(0));
    builder_.SetInsertPoint(check);
    auto* type = llvm::FunctionType::get(i32(), {ptr(), i32(), i32(), i32()}, false);
    llvm::Value* allowed =
        builder_.CreateCall(type, HostPointer(reinterpret_cast<const void*>(&CallClassAllows)),
                            {HostPointer(&set), klass, builder_.CreateZExt(proto, i32()),
                             builder_.CreateZExt(port, i32())});
    builder_.CreateRet(allowed);
  }

  llvm::Value* EmitClassOfV4(const RuleSetTables& set, size_t offset) {
    llvm::Value* address = Swap(LoadKeyField(i32(), offset));
    if (set.host_count + set.starts_v4.size() > kInlineAddressLimit) {
      auto* type = llvm::FunctionType::get(i32(), {ptr(), i32()}, false);
      return builder_.CreateCall(type, HostPointer(reinterpret_cast<const void*>(&CallClassOfV4)),
                                 {HostPointer(&set), address});
    }
    // Starts ascend, so the last one not above the address names its interval.
    llvm::Value* klass = builder_.getInt32(set.interval_class[0]);
    for (size_t i = 1; i < set.starts_v4.size(); ++i) {
      llvm::Value* above = builder_.CreateICmpUGE(address, builder_.getInt32(set.starts_v4[i]));
      klass = builder_.CreateSelect(above, builder_.getInt32(set.interval_class[i]), klass);
    }
    for (const HostSlotV4& host : set.hosts_v4) {
      if (host.klass == kNoClass) continue;
      llvm::Value* same = builder_.CreateICmpEQ(address, builder_.getInt32(host.address));
      klass = builder_.CreateSelect(same, builder_.getInt32(host.klass), klass);
    }
    return klass;
  }

  llvm::Value* EmitClassOfV6(const RuleSetTables& set, size_t offset) {
    llvm::Value* high = Swap(LoadKeyField(i64(), offset));
    llvm::Value* low = Swap(LoadKeyField(i64(), offset + 8));
    if (set.host_count + set.starts_v6.size() > kInlineAddressLimit) {
      auto* type = llvm::FunctionType::get(i32(), {ptr(), i64(), i64()}, false);
      return builder_.CreateCall(type, HostPointer(reinterpret_cast<const void*>(&CallClassOfV6)),
                                 {HostPointer(&set), high, low});
    }
    llvm::Type* i128 = builder_.getInt128Ty();
    llvm::Value* address = builder_.CreateOr(
        builder_.CreateShl(builder_.CreateZExt(high, i128), 64), builder_.CreateZExt(low, i128));
    auto constant128 = [&](Uint128 value) {
      uint64_t words[2] = {static_cast<uint64_t>(value), static_cast<uint64_t>(value >> 64)};
      return llvm::ConstantInt::get(context_, llvm::APInt(128, words));
    };
    llvm::Value* klass = builder_.getInt32(set.interval_class[0]);
    for (size_t i = 1; i < set.starts_v6.size(); ++i) {
      llvm::Value* above = builder_.CreateICmpUGE(address, constant128(set.starts_v6[i]));
      klass = builder_.CreateSelect(above, builder_.getInt32(set.interval_class[i]), klass);
    }
    for (const HostSlotV6& host : set.hosts_v6) {
      if (host.klass == kNoClass) continue;
      Uint128 value = Uint128{host.high} << 64 | host.low;
      llvm::Value* same = builder_.CreateICmpEQ(address, constant128(value));
      klass = builder_.CreateSelect(same, builder_.getInt32(host.klass), klass);
    }
    return klass;
  }

  static bool ClassesFitInline(const RuleSetTables& set) {
    if (set.classes.size() - 1 > kInlineClassLimit) return false;
    for (const PortClass& c : set.classes) {
      if (c.tcp_end - c.tcp_begin > kInlineRangesPerClass) return false;
      if (c.udp_end - c.udp_begin > kInlineRangesPerClass) return false;
    }
    return true;
  }

  void EmitInlineClasses(const RuleSetTables& set, llvm::Value* klass, llvm::Value* proto,
                         llvm::Value* port) {
    llvm::BasicBlock* deny = NewBlock("deny");
    llvm::SwitchInst* by_class =
        builder_.CreateSwitch(klass, deny, static_cast<unsigned>(set.classes.size()));
    builder_.SetInsertPoint(deny);
    builder_.CreateRet(builder_.getInt32(0));
    for (size_t k = 1; k < set.classes.size(); ++k) {
      llvm::BasicBlock* block = NewBlock("class");
      by_class->addCase(builder_.getInt32(static_cast<uint32_t>(k)), block);
      builder_.SetInsertPoint(block);
      llvm::Value* allowed = EmitClassCheck(set, set.classes[k], proto, port);
      builder_.CreateRet(builder_.CreateZExt(allowed, i32()));
    }
  }

  llvm::Value* EmitClassCheck(const RuleSetTables& set, const PortClass& c, llvm::Value* proto,
                              llvm::Value* port) {
    if (c.AllowsEverything()) return builder_.getTrue();
    llvm::Value* allowed = builder_.getFalse();
    int whole = 0;
    for (uint64_t bits : c.whole_protocols) whole += std::popcount(bits);
    if (whole > kInlineWholeProtocols) {
      allowed = EmitBitmapTest(c, proto);
    } else {
      for (int p = 0; p < 256; ++p) {
        if (!c.AllowsWholeProtocol(static_cast<uint8_t>(p))) continue;
        allowed = builder_.CreateOr(allowed, builder_.CreateICmpEQ(proto, builder_.getInt8(p)));
      }
    }
    auto in_ranges = [&](uint32_t begin, uint32_t end) {
      llvm::Value* in = builder_.getFalse();
      for (uint32_t i = begin; i < end; ++i) {
        uint16_t first = set.range_first[i], last = set.range_last[i];
        // port - first wraps past `last - first` when below `first`: one unsigned compare.
        llvm::Value* offset = builder_.CreateSub(port, builder_.getInt16(first));
        in = builder_.CreateOr(
            in,
            builder_.CreateICmpULE(offset, builder_.getInt16(static_cast<uint16_t>(last - first))));
      }
      return in;
    };
    if (c.tcp_end > c.tcp_begin) {
      llvm::Value* is_tcp = builder_.CreateICmpEQ(proto, builder_.getInt8(kProtoTcp));
      allowed =
          builder_.CreateOr(allowed, builder_.CreateAnd(is_tcp, in_ranges(c.tcp_begin, c.tcp_end)));
    }
    if (c.udp_end > c.udp_begin) {
      llvm::Value* is_udp = builder_.CreateICmpEQ(proto, builder_.getInt8(kProtoUdp));
      allowed =
          builder_.CreateOr(allowed, builder_.CreateAnd(is_udp, in_ranges(c.udp_begin, c.udp_end)));
    }
    return allowed;
  }

  llvm::Value* EmitBitmapTest(const PortClass& c, llvm::Value* proto) {
    auto* type = llvm::ArrayType::get(i64(), 4);
    llvm::ArrayRef<uint64_t> words(c.whole_protocols, 4);
    auto* bitmap = new llvm::GlobalVariable(module_, type, /*isConstant=*/true,
                                            llvm::GlobalValue::PrivateLinkage,
                                            llvm::ConstantDataArray::get(context_, words));
    llvm::Value* wide = builder_.CreateZExt(proto, i64());
    llvm::Value* word_at = builder_.CreateInBoundsGEP(
        type, bitmap, {builder_.getInt64(0), builder_.CreateLShr(wide, 6)});
    llvm::Value* word = builder_.CreateLoad(i64(), word_at);
    llvm::Value* bit = builder_.CreateAnd(builder_.CreateLShr(word, builder_.CreateAnd(wide, 63)),
                                          builder_.getInt64(1));
    return builder_.CreateICmpNE(bit, builder_.getInt64(0));
  }

  llvm::LLVMContext& context_;
  llvm::Module& module_;
  const FilterIr& ir_;
  const FilterTables& tables_;
  llvm::IRBuilder<> builder_;
  llvm::Function* fn_ = nullptr;
  llvm::Value* key_ = nullptr;
};

void Optimize(llvm::Module& module) {
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager cgscc;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder;
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgscc);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgscc, modules);
  builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2).run(module, modules);
}

std::string ErrorText(llvm::Error error) { return llvm::toString(std::move(error)); }

}  // namespace

CompiledFilter::~CompiledFilter() = default;

JitCompiler::JitCompiler(Options options, std::shared_ptr<JitSession> session)
    : options_(options), session_(std::move(session)) {}

JitCompiler::~JitCompiler() = default;

Result<std::unique_ptr<JitCompiler>> JitCompiler::Create(Options options) {
  static std::once_flag native_target;
  std::call_once(native_target, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  auto session = std::make_shared<JitSession>();
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) return Fail("filter jit: cannot create LLJIT: " + ErrorText(jit.takeError()));
  session->jit = std::move(*jit);
  // Measures what each compile emits (code, constants, relocations): the memory it costs.
  JitSession* raw = session.get();
  session->jit->getObjTransformLayer().setTransform(
      [raw](std::unique_ptr<llvm::MemoryBuffer> object)
          -> llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> {
        raw->object_bytes += object->getBufferSize();
        return object;
      });
  return std::unique_ptr<JitCompiler>(new JitCompiler(options, std::move(session)));
}

Result<std::unique_ptr<CompiledFilter>> JitCompiler::Compile(const FilterIr& ir) {
  auto started = std::chrono::steady_clock::now();
  std::unique_ptr<CompiledFilter> compiled(new CompiledFilter());
  compiled->tables_ = std::make_unique<const FilterTables>(BuildFilterTables(ir));

  std::lock_guard lock(session_->mutex);
  llvm::orc::LLJIT& jit = *session_->jit;
  std::string suffix = std::to_string(session_->next_module++);
  const std::string names[2] = {"bf_match_in_" + suffix, "bf_match_out_" + suffix};

  auto context = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>("filter_" + suffix, *context);
  module->setDataLayout(jit.getDataLayout());
  module->setTargetTriple(jit.getTargetTriple().str());
  FilterCodegen codegen(*context, *module, ir, *compiled->tables_);
  codegen.EmitMatch(Direction::kInbound, names[0]);
  codegen.EmitMatch(Direction::kOutbound, names[1]);
  std::string problems;
  llvm::raw_string_ostream problem_stream(problems);
  if (llvm::verifyModule(*module, &problem_stream)) {
    return Fail("filter jit: generated invalid IR for vnic " + ir.vnic_id + ": " + problems);
  }
  if (options_.optimize) Optimize(*module);

  session_->object_bytes = 0;
  auto code = std::make_unique<JitCode>();
  code->session = session_;
  code->tracker = jit.getMainJITDylib().createResourceTracker();
  if (llvm::Error error = jit.addIRModule(
          code->tracker, llvm::orc::ThreadSafeModule(std::move(module), std::move(context)))) {
    return Fail("filter jit: adding module failed: " + ErrorText(std::move(error)));
  }
  for (int direction = 0; direction < 2; ++direction) {
    auto address = jit.lookup(names[direction]);
    if (!address) {
      // `code` owns the tracker: returning frees what was added.
      auto error = ErrorText(address.takeError());
      return Fail("filter jit: compiling " + names[direction] + " failed: " + error);
    }
    compiled->match_[direction] = address->toPtr<uint32_t(const PacketKey*)>();
  }
  compiled->code_ = std::move(code);
  compiled->object_bytes_ = session_->object_bytes;
  compiled->compile_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return compiled;
}

}  // namespace butterfly
