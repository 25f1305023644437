// CRC-32C (Castagnoli), the checksum of the state journal's records: it catches the torn and
// corrupt tails a power loss leaves, and is the checksum storage formats (ext4, iSCSI) settled on.
#pragma once

#include <cstdint>
#include <string_view>

namespace butterfly {

// Extends `crc` (the CRC of the bytes before `data`; 0 for none) over `data`.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace butterfly
