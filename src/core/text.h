// Checks and quoting of text that comes from API clients: every protobuf `string` field must be
// UTF-8 (strict decoders in other languages refuse anything else), and error messages quote
// user input without passing its bytes on raw.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace butterfly {

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF); otherwise false, with the offset of the first byte that is not.
bool IsValidUtf8(std::string_view text, size_t* bad_offset = nullptr);

// `text` between single quotes, with every byte outside printable ASCII, the quote and the
// backslash written as \xHH: safe in a log line, an error description and a terminal.
std::string QuoteForMessage(std::string_view text);

}  // namespace butterfly
