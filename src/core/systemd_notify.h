// Readiness for systemd's Type=notify: a datagram to the socket named by $NOTIFY_SOCKET (the
// sd_notify protocol), so `systemctl start butterflyd` returns once the state is restored and the
// API answers, not when the process merely exists. The protocol is one datagram, so it is spoken
// here rather than by linking libsystemd.
#pragma once

#include <string_view>

namespace butterfly {

// Sends `state` (e.g. "READY=1", "STOPPING=1", "STATUS=...") to systemd. Returns false, and does
// nothing, when $NOTIFY_SOCKET is not set (not started by systemd) or the send fails.
bool NotifySystemd(std::string_view state);

}  // namespace butterfly
