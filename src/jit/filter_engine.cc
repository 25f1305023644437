#include "jit/filter_engine.h"

#include "core/log.h"

namespace butterfly {

FilterEngine::FilterEngine(RcuDomain* rcu, Options options) : rcu_(rcu), options_(options) {
  if (options_.jit) {
    auto compiler = JitCompiler::Create({.optimize = options_.optimize});
    if (compiler) {
      compiler_ = std::move(*compiler);
    } else {
      LOG_ERROR("filter: JIT unavailable, the interpreter enforces every policy: %s",
                compiler.error().c_str());
    }
  }
  background_ = std::thread([this] { BackgroundLoop(); });
}

FilterEngine::~FilterEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  background_.join();
  std::lock_guard lock(mutex_);
  for (auto& [id, state] : vnics_) {
    const FilterProgram* program = state.slot->Exchange(nullptr);
    FilterSlot* slot = state.slot.release();
    rcu_->Defer([program, slot] {
      delete program;
      delete slot;
    });
  }
  vnics_.clear();
  rcu_->Synchronize();
}

FilterEngine::VnicState& FilterEngine::StateOf(const std::string& vnic_id) {
  auto [it, inserted] = vnics_.try_emplace(vnic_id);
  if (inserted) {
    it->second.slot = std::make_unique<FilterSlot>(next_vnic_index_++);
    it->second.slot->Exchange(FilterProgram::DropAll().release());
  }
  return it->second;
}

void FilterEngine::Publish(FilterSlot* slot, std::unique_ptr<FilterProgram> program) {
  const FilterProgram* old = slot->Exchange(program.release());
  if (old) rcu_->Defer([old] { delete old; });
  wake_.notify_all();  // the background thread polls the RCU domain until it is freed
}

Status FilterEngine::SetPolicy(std::shared_ptr<const VnicPolicy> policy) {
  auto ir = BuildFilterIr(*policy);
  std::lock_guard lock(mutex_);
  VnicState& state = StateOf(policy->vnic_id);
  state.generation = policy->generation;
  ++counters_.policies;
  to_compile_.erase(policy->vnic_id);
  if (!ir) {
    Publish(state.slot.get(), FilterProgram::DropAll());
    LOG_ERROR("filter: vnic %s drops everything: %s", policy->vnic_id.c_str(), ir.error().c_str());
    return Fail(ir.error());
  }
  if (policy->bypass_filtering) {
    Publish(state.slot.get(), FilterProgram::Bypass(policy->generation));
    return Ok();
  }
  std::shared_ptr<const FilterIr> shared_ir = std::move(*ir);
  Publish(state.slot.get(), FilterProgram::Interpreted(shared_ir));
  if (!compiler_ || shared_ir->RuleCount() == 0) {
    ++counters_.interpreted;
    return Ok();
  }
  to_compile_[policy->vnic_id] = std::move(shared_ir);
  compile_order_.push_back(policy->vnic_id);
  wake_.notify_all();
  return Ok();
}

void FilterEngine::RemoveVnic(const std::string& vnic_id) {
  std::lock_guard lock(mutex_);
  to_compile_.erase(vnic_id);
  auto it = vnics_.find(vnic_id);
  if (it == vnics_.end()) return;
  FilterSlot* slot = it->second.slot.release();
  vnics_.erase(it);
  rcu_->Defer([slot] {
    delete slot->Exchange(nullptr);
    delete slot;
  });
  wake_.notify_all();
}

FilterSlot* FilterEngine::SlotOf(const std::string& vnic_id) {
  std::lock_guard lock(mutex_);
  return StateOf(vnic_id).slot.get();
}

FilterEngine::Counters FilterEngine::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

bool FilterEngine::WaitForCompiles(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [this] { return to_compile_.empty() && !compiling_; });
}

void FilterEngine::BackgroundLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (compile_order_.empty()) {
      idle_.notify_all();
      if (rcu_->pending() > 0) {
        wake_.wait_for(lock, options_.reclaim_period);
      } else {
        wake_.wait(lock);
      }
      lock.unlock();
      rcu_->Poll();
      lock.lock();
      continue;
    }
    std::string vnic_id = std::move(compile_order_.front());
    compile_order_.pop_front();
    auto pending = to_compile_.find(vnic_id);
    // Queued more than once, or removed since: the newest IR was (or will be) compiled already.
    if (pending == to_compile_.end()) continue;
    std::shared_ptr<const FilterIr> ir = std::move(pending->second);
    to_compile_.erase(pending);
    compiling_ = true;
    lock.unlock();
    auto compiled = compiler_->Compile(*ir);
    lock.lock();
    compiling_ = false;
    auto state = vnics_.find(vnic_id);
    if (!compiled) {
      ++counters_.compile_failures;
      LOG_ERROR("filter: vnic %s stays interpreted: %s", vnic_id.c_str(), compiled.error().c_str());
      continue;
    }
    if (state == vnics_.end() || state->second.generation != ir->generation) {
      ++counters_.stale_compiles;
      continue;  // never published: freeing the code now is safe
    }
    double ms = (*compiled)->compile_ms();
    ++counters_.compiles;
    counters_.compile_ms_total += ms;
    counters_.compile_ms_max = std::max(counters_.compile_ms_max, ms);
    Publish(state->second.slot.get(), FilterProgram::Compiled(std::move(ir), std::move(*compiled)));
  }
  idle_.notify_all();
}

}  // namespace butterfly
