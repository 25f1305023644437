// What one API request frame may weigh, shared by butterflyd (which answers larger ones REJECTED)
// and the CLI (which refuses to send them, since frames past twice this size never reach the
// daemon: ZeroMQ closes their connection, unanswered, so that no client makes it allocate
// without bound).
#pragma once

#include <cstddef>

namespace butterfly {

inline constexpr size_t kMaxRequestFrameBytes = size_t{64} << 20;
// The cap given to ZeroMQ itself: frames between the two limits are read and answered REJECTED.
inline constexpr size_t kMaxReceivedFrameBytes = 2 * kMaxRequestFrameBytes;

}  // namespace butterfly
