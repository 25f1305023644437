// Kernel TAP interfaces for TAP vnics (containers, tests): a non-persistent tap named after the
// vnic, up, in the daemon's network namespace (it may be moved elsewhere afterwards).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace butterfly {

// Returns the non-blocking tun file descriptor; the interface disappears when it is closed. The
// kernel side plays the VM, so it gets the vnic's MAC (antispoof would drop anything else).
Result<int> CreateTapInterface(const std::string& name, const uint8_t* mac, unsigned mtu);

}  // namespace butterfly
