#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "crypto/evp.h"

namespace ecfs::crypto {

Status random_bytes(MutableByteSpan out) {
  // RAND_bytes takes an int length; larger requests go in chunks.
  constexpr size_t kChunk = size_t{1} << 30;
  for (size_t done = 0; done < out.size();) {
    const size_t n = std::min(kChunk, out.size() - done);
    if (RAND_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      return evp::fail_openssl(EIO, "the OpenSSL random generator failed");
    }
    done += n;
  }
  return ok();
}

}  // namespace ecfs::crypto
