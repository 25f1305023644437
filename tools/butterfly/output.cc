#include "output.h"

#include <algorithm>
#include <cstdio>

#include "core/text.h"

namespace butterfly::cli {
namespace {

void Escape(std::string_view text, std::string& out) {
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char code[8];
          std::snprintf(code, sizeof(code), "\\u%04x", c);
          out += code;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// JSON text is UTF-8: bytes that are not (from a daemon older than its own UTF-8 check) become
// U+FFFD, so that a parser still reads the document.
void EscapeText(std::string_view text, std::string& out) {
  if (IsValidUtf8(text)) return Escape(text, out);
  std::string repaired;
  size_t offset = 0;
  while (offset < text.size()) {
    size_t bad = 0;
    if (IsValidUtf8(text.substr(offset), &bad)) {
      repaired += text.substr(offset);
      break;
    }
    repaired += text.substr(offset, bad);
    repaired += "\xEF\xBF\xBD";
    offset += bad + 1;
  }
  Escape(repaired, out);
}

}  // namespace

JsonValue JsonValue::StringArray(const std::vector<std::string>& items) {
  Array array;
  for (const auto& item : items) array.emplace_back(item);
  return array;
}

std::string JsonValue::Dump() const {
  std::string out;
  DumpTo(out);
  return out;
}

void JsonValue::DumpTo(std::string& out) const {
  if (std::holds_alternative<std::nullptr_t>(value_)) {
    out += "null";
  } else if (const bool* b = std::get_if<bool>(&value_)) {
    out += *b ? "true" : "false";
  } else if (const int64_t* i = std::get_if<int64_t>(&value_)) {
    out += std::to_string(*i);
  } else if (const std::string* s = std::get_if<std::string>(&value_)) {
    EscapeText(*s, out);
  } else if (const Array* a = std::get_if<Array>(&value_)) {
    out += '[';
    for (size_t n = 0; n < a->size(); ++n) {
      if (n) out += ',';
      (*a)[n].DumpTo(out);
    }
    out += ']';
  } else if (const Object* o = std::get_if<Object>(&value_)) {
    out += '{';
    for (size_t n = 0; n < o->size(); ++n) {
      if (n) out += ',';
      EscapeText((*o)[n].first, out);
      out += ':';
      (*o)[n].second.DumpTo(out);
    }
    out += '}';
  }
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) widths[c] = headers_[c].size();
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < widths.size(); ++c) {
      std::string cell = c < row.size() ? row[c] : "";
      line += cell;
      if (c + 1 < widths.size()) line += std::string(widths[c] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print_row(headers_);
  for (const auto& row : rows_) print_row(row);
}

}  // namespace butterfly::cli
