// What the CLI prints: aligned tables for people, JSON (one document per command, one per line)
// for scripts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace butterfly::cli {

// A JSON value with keys kept in insertion order, so the output is stable.
class JsonValue {
 public:
  using Object = std::vector<std::pair<std::string, JsonValue>>;
  using Array = std::vector<JsonValue>;

  JsonValue() : value_(nullptr) {}
  JsonValue(bool value) : value_(value) {}                            // NOLINT
  JsonValue(int64_t value) : value_(value) {}                         // NOLINT
  JsonValue(uint64_t value) : value_(static_cast<int64_t>(value)) {}  // NOLINT
  JsonValue(int value) : value_(static_cast<int64_t>(value)) {}       // NOLINT
  JsonValue(unsigned value) : value_(static_cast<int64_t>(value)) {}  // NOLINT
  JsonValue(std::string value) : value_(std::move(value)) {}          // NOLINT
  JsonValue(const char* value) : value_(std::string(value)) {}        // NOLINT
  JsonValue(Array value) : value_(std::move(value)) {}                // NOLINT
  JsonValue(Object value) : value_(std::move(value)) {}               // NOLINT

  static JsonValue StringArray(const std::vector<std::string>& items);
  std::string Dump() const;

 private:
  void DumpTo(std::string& out) const;
  std::variant<std::nullptr_t, bool, int64_t, std::string, Array, Object> value_;
};

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

struct Output {
  bool json = false;
  std::ostream& out;
  std::ostream& err;

  void PrintJson(const JsonValue& value) const { out << value.Dump() << "\n"; }
};

}  // namespace butterfly::cli
