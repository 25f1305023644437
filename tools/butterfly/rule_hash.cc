#include "rule_hash.h"

#include <google/protobuf/text_format.h>

#include <cstdio>
#include <functional>

namespace butterfly::cli {

std::string RuleHash(const MessageV0_Rule& rule) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(rule, &text);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016zx", std::hash<std::string>()(text));
  return hex;
}

}  // namespace butterfly::cli
