// What the API accepts at most, in one request and in the state it builds. Each limit is refused
// with an error that names it; README ("API", limits) lists them. Shared by butterflyd and the
// CLI.
#pragma once

#include <cstddef>

namespace butterfly {

// A request frame: larger ones are answered REJECTED unread. Frames past twice this size never
// reach the daemon (ZeroMQ closes their connection, unanswered, so that no client makes it
// allocate without bound); the CLI sends neither.
inline constexpr size_t kMaxRequestFrameBytes = size_t{64} << 20;
inline constexpr size_t kMaxReceivedFrameBytes = 2 * kMaxRequestFrameBytes;

// The state. Sized well above what a host serves (DPDK's vhost library takes 1,023 vhost-user
// sockets per process, a limit of its own, refused by the dataplane), so that a runaway client
// meets a clear refusal instead of exhausting the daemon.
inline constexpr size_t kMaxVnics = 65536;
inline constexpr size_t kMaxIpsPerVnic = 1024;
inline constexpr size_t kMaxSgsPerVnic = 256;
inline constexpr size_t kMaxSecurityGroups = 65536;
inline constexpr size_t kMaxRulesPerSg = 100000;
inline constexpr size_t kMaxMembersPerSg = 1000000;

}  // namespace butterfly
