// The rule hash `sg rule list` shows and `sg rule del` accepts: the original Butterfly's, so that
// scripts which delete rules by hash keep working. It is libstdc++'s std::hash of the rule's
// protobuf text form, as 16 lowercase hex digits.
#pragma once

#include <string>

#include "message_0.pb.h"

namespace butterfly::cli {

std::string RuleHash(const MessageV0_Rule& rule);

}  // namespace butterfly::cli
