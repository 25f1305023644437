#pragma once

namespace butterfly {
// Set by CMake from the project version.
inline constexpr const char* kButterflyVersion = BUTTERFLY_VERSION;
}  // namespace butterfly
