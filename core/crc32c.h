// CRC-32C (Castagnoli), the checksum of the agent's spool records and of the aggregator's
// forwarding cursors: one implementation for every on-disk format that needs a checksum.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace suanli {

// CRC-32C (Castagnoli), as iSCSI and ext4 use it: Crc32c("123456789") == 0xE3069283. Pass the
// previous result as `crc` to continue over more bytes.
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once), else slicing-by-8.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);
// The two implementations, for tests; Crc32cHardware only where HaveHardwareCrc32c().
uint32_t Crc32cSoftware(std::string_view data, uint32_t crc = 0);
uint32_t Crc32cHardware(std::string_view data, uint32_t crc = 0);
bool HaveHardwareCrc32c();

}  // namespace suanli
