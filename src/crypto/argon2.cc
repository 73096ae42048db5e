#include "crypto/argon2.h"

#include <argon2.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <string>

namespace ecfs::crypto {
namespace {

constexpr size_t kMinSaltBytes = 8;  // RFC 9106 section 3.1: at least 8 bytes

}  // namespace

Status check_argon2_params(const Argon2Params& params) {
  if (params.time_cost < 1 || params.time_cost > kArgon2MaxTimeCost) {
    return fail(EINVAL, "argon2id passes " + std::to_string(params.time_cost) + " out of range");
  }
  if (params.parallelism < 1 || params.parallelism > kArgon2MaxParallelism) {
    return fail(EINVAL, "argon2id lanes " + std::to_string(params.parallelism) + " out of range");
  }
  if (params.memory_kib < 8 * params.parallelism || params.memory_kib > kArgon2MaxMemoryKib) {
    return fail(EINVAL, "argon2id memory " + std::to_string(params.memory_kib) +
                            " KiB out of range for " + std::to_string(params.parallelism) +
                            " lanes");
  }
  return ok();
}

Result<SecretBytes> argon2id(ByteSpan password, ByteSpan salt, const Argon2Params& params,
                             size_t out_size, ByteSpan secret, ByteSpan associated_data) {
  ECFS_TRY(check_argon2_params(params));
  if (salt.size() < kMinSaltBytes) return fail(EINVAL, "argon2id salt shorter than 8 bytes");
  if (out_size < ARGON2_MIN_OUTLEN) return fail(EINVAL, "argon2id output shorter than 4 bytes");
  SecretBytes out(out_size);
  // libargon2 takes non-const pointers but, without the CLEAR flags, only
  // reads the inputs; it wipes its own working memory before freeing it.
  argon2_context context{};
  context.out = out.data();
  context.outlen = static_cast<uint32_t>(out.size());
  context.pwd = const_cast<uint8_t*>(password.data());
  context.pwdlen = static_cast<uint32_t>(password.size());
  context.salt = const_cast<uint8_t*>(salt.data());
  context.saltlen = static_cast<uint32_t>(salt.size());
  context.secret = secret.empty() ? nullptr : const_cast<uint8_t*>(secret.data());
  context.secretlen = static_cast<uint32_t>(secret.size());
  context.ad = associated_data.empty() ? nullptr : const_cast<uint8_t*>(associated_data.data());
  context.adlen = static_cast<uint32_t>(associated_data.size());
  context.t_cost = params.time_cost;
  context.m_cost = params.memory_kib;
  context.lanes = params.parallelism;
  context.threads = params.parallelism;
  context.version = ARGON2_VERSION_13;
  context.flags = ARGON2_DEFAULT_FLAGS;
  const int result = argon2_ctx(&context, Argon2_id);
  if (result == ARGON2_MEMORY_ALLOCATION_ERROR) {
    return fail(ENOMEM,
                "argon2id could not allocate " + std::to_string(params.memory_kib) + " KiB");
  }
  if (result != ARGON2_OK) {
    return fail(EINVAL, std::string("argon2id failed: ") + argon2_error_message(result));
  }
  return out;
}

Result<Argon2Params> calibrate_argon2id(std::chrono::milliseconds target, uint32_t max_memory_kib,
                                        uint32_t max_parallelism) {
  using Clock = std::chrono::steady_clock;
  Argon2Params params;
  params.parallelism = std::clamp<uint32_t>(max_parallelism, 1, kArgon2MaxParallelism);
  max_memory_kib =
      std::clamp<uint32_t>(max_memory_kib, 8 * params.parallelism, kArgon2MaxMemoryKib);
  const Bytes password(16, 0x70);
  const Bytes salt(16, 0x73);
  const auto time_one = [&]() -> Result<Clock::duration> {
    const auto start = Clock::now();
    auto hash = argon2id(password, salt, params, 32);
    if (!hash) return std::unexpected(hash.error());
    return Clock::now() - start;
  };
  // Memory, doubling from 1 MiB (or the cap) while one pass stays under
  // the target.
  params.memory_kib =
      std::min<uint32_t>(std::max<uint32_t>(1024, 8 * params.parallelism), max_memory_kib);
  auto elapsed = time_one();
  if (!elapsed) return std::unexpected(elapsed.error());
  while (params.memory_kib < max_memory_kib && *elapsed * 2 <= target) {
    params.memory_kib = std::min<uint32_t>(params.memory_kib * 2, max_memory_kib);
    elapsed = time_one();
    if (!elapsed) return std::unexpected(elapsed.error());
  }
  // Then passes. A hash costs filling the memory plus each pass, so the
  // first estimate (passes in proportion) is refined by measuring again, a
  // few times at most, until it lands within a tenth of the target.
  const double wanted = std::chrono::duration<double>(target).count();
  for (int refinement = 0; refinement < 4; ++refinement) {
    const double took = std::chrono::duration<double>(*elapsed).count();
    if (std::abs(took - wanted) <= wanted / 10 || (took > wanted && params.time_cost == 1)) break;
    const double scaled = std::clamp(params.time_cost * wanted / std::max(took, 1e-6) + 0.5, 1.0,
                                     static_cast<double>(kArgon2MaxTimeCost));
    const auto next = static_cast<uint32_t>(scaled);
    if (next == params.time_cost) break;
    params.time_cost = next;
    elapsed = time_one();
    if (!elapsed) return std::unexpected(elapsed.error());
  }
  return params;
}

}  // namespace ecfs::crypto
