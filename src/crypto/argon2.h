// Argon2id (RFC 9106, version 0x13), the memory-hard hash that turns a
// passphrase into a wrapping key (fscrypt/protector.h), through Debian's
// libargon2, the reference implementation. Also the calibration that picks
// costs for a target time, as google/fscrypt does at `fscrypt setup`: memory
// first (up to a cap), then passes until one hash takes the target.
#pragma once

#include <chrono>
#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

struct Argon2Params {
  uint32_t time_cost = 1;    // passes over memory, t >= 1
  uint32_t memory_kib = 8;   // m, at least 8 * parallelism
  uint32_t parallelism = 1;  // lanes, p >= 1
  friend bool operator==(const Argon2Params&, const Argon2Params&) = default;
};

// The largest costs a stored record may ask for: a corrupt or hostile image
// must not make an unlock run for hours or allocate more than 4 GiB.
inline constexpr uint32_t kArgon2MaxTimeCost = 1u << 16;
inline constexpr uint32_t kArgon2MaxMemoryKib = 4u << 20;
inline constexpr uint32_t kArgon2MaxParallelism = 64;

// EINVAL when `params` are outside RFC 9106's rules or above the limits.
Status check_argon2_params(const Argon2Params& params);

// Argon2id of `password` and `salt` (at least 8 bytes), with the optional
// secret and associated data of RFC 9106 section 3.1, into `out_size` bytes
// (4 and up) of secure memory. EINVAL for bad parameters; ENOMEM when the
// memory cannot be had.
Result<SecretBytes> argon2id(ByteSpan password, ByteSpan salt, const Argon2Params& params,
                             size_t out_size, ByteSpan secret = {}, ByteSpan associated_data = {});

// Costs that make one argon2id() take about `target` (wall time, within a
// tenth when the machine is steady) on this machine, using
// up to `max_memory_kib` of memory and up to `max_parallelism` lanes (the
// machine's CPUs, capped). Memory is raised before passes, since it is what
// makes guessing expensive on other hardware.
Result<Argon2Params> calibrate_argon2id(std::chrono::milliseconds target, uint32_t max_memory_kib,
                                        uint32_t max_parallelism);

}  // namespace ecfs::crypto
