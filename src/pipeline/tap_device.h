// Kernel TAP interfaces for TAP vnics (containers, tests): a non-persistent tap named after the
// vnic, up, in the daemon's network namespace (it may be moved elsewhere afterwards).
#pragma once

#include <string>

#include "core/result.h"

namespace butterfly {

// Returns the non-blocking tun file descriptor; the interface disappears when it is closed.
Result<int> CreateTapInterface(const std::string& name, unsigned mtu);

}  // namespace butterfly
