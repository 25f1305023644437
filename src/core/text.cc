#include "core/text.h"

#include <cstdint>

namespace butterfly {

bool IsValidUtf8(std::string_view text, size_t* bad_offset) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    uint8_t lead = bytes[i];
    size_t length;
    // The range the second byte must fall in rules out overlong forms, surrogates and code
    // points past U+10FFFF (RFC 3629, section 4).
    uint8_t second_min = 0x80, second_max = 0xbf;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) second_min = 0xa0;
      if (lead == 0xed) second_max = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) second_min = 0x90;
      if (lead == 0xf4) second_max = 0x8f;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    bool ok = i + length <= n && bytes[i + 1] >= second_min && bytes[i + 1] <= second_max;
    for (size_t k = 2; ok && k < length; ++k) ok = (bytes[i + k] & 0xc0) == 0x80;
    if (!ok) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += length;
  }
  return true;
}

std::string QuoteForMessage(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string quoted = "'";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      quoted += static_cast<char>(c);
    } else {
      quoted += "\\x";
      quoted += kHex[c >> 4];
      quoted += kHex[c & 0xf];
    }
  }
  quoted += "'";
  return quoted;
}

}  // namespace butterfly
