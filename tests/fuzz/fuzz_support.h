// Shared by the libFuzzer targets: reading structured values out of the fuzzer's bytes, and the
// check that turns a broken invariant into a crash libFuzzer keeps.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace butterfly::fuzz {

// A broken invariant: print why and abort, so libFuzzer saves the input as a crash.
#define FUZZ_CHECK(condition, ...)                                                             \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #condition); \
      std::fprintf(stderr, "" __VA_ARGS__);                                                    \
      std::fputc('\n', stderr);                                                                \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

// Consumes the fuzzer's bytes front to back; past the end every read yields zeros.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t U8() { return at_ < size_ ? data_[at_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() << 8 | U8()); }
  uint32_t U32() { return uint32_t{U16()} << 16 | U16(); }
  bool Bool() { return U8() & 1; }
  void Bytes(uint8_t* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = U8();
  }
  // Up to `n` bytes (fewer at the end).
  std::string_view Take(size_t n) {
    size_t count = std::min(n, remaining());
    std::string_view out(reinterpret_cast<const char*>(data_ + at_), count);
    at_ += count;
    return out;
  }
  std::string_view Rest() { return Take(remaining()); }
  size_t remaining() const { return size_ - at_; }
  bool empty() const { return at_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace butterfly::fuzz
