#pragma once
#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {
// Fills `out` from the OpenSSL CSPRNG (seeded by the kernel). EIO on failure.
Status random_bytes(MutableByteSpan out);
}  // namespace ecfs::crypto
