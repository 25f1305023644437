#include "jit/filter_program.h"

namespace butterfly {

std::unique_ptr<FilterProgram> FilterProgram::DropAll() {
  return std::unique_ptr<FilterProgram>(new FilterProgram(ProgramKind::kDropAll, 0));
}

std::unique_ptr<FilterProgram> FilterProgram::Bypass(uint64_t generation) {
  return std::unique_ptr<FilterProgram>(new FilterProgram(ProgramKind::kBypass, generation));
}

std::unique_ptr<FilterProgram> FilterProgram::Interpreted(std::shared_ptr<const FilterIr> ir) {
  std::unique_ptr<FilterProgram> program(new FilterProgram(ProgramKind::kRules, ir->generation));
  program->ir_ = std::move(ir);
  return program;
}

std::unique_ptr<FilterProgram> FilterProgram::Compiled(std::shared_ptr<const FilterIr> ir,
                                                       std::unique_ptr<CompiledFilter> compiled) {
  std::unique_ptr<FilterProgram> program = Interpreted(std::move(ir));
  program->jit_[0] = compiled->match(Direction::kInbound);
  program->jit_[1] = compiled->match(Direction::kOutbound);
  program->compiled_ = std::move(compiled);
  return program;
}

}  // namespace butterfly
