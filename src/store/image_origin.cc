#include "store/image_origin.h"

#include <algorithm>
#include <cerrno>

namespace ecfs::store {
namespace {

constexpr size_t kHeadSize = 14;  // created_sec, created_nsec, program_len

// What makes a program text: ASCII a terminal shows as it is, so that
// inspect can print it without escaping.
std::string program_problem(std::string_view program) {
  if (program.empty()) return "an empty program name";
  if (program.size() > kMaxOriginProgramSize) {
    return "a program name of " + std::to_string(program.size()) + " bytes (at most " +
           std::to_string(kMaxOriginProgramSize) + ")";
  }
  const bool printable =
      std::all_of(program.begin(), program.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  return printable ? std::string() : "a program name that is not printable ASCII";
}

}  // namespace

Result<Bytes> encode_image_origin(const ImageOrigin& origin) {
  if (const std::string problem = program_problem(origin.program); !problem.empty()) {
    return fail(EINVAL, "image origin with " + problem);
  }
  if (origin.created_nsec >= 1'000'000'000) return fail(EINVAL, "image origin with a bad time");
  Bytes out(kHeadSize + origin.program.size(), 0);
  store_le64(&out[0], static_cast<uint64_t>(origin.created_sec));
  store_le32(&out[8], origin.created_nsec);
  out[12] = static_cast<uint8_t>(origin.program.size());
  out[13] = static_cast<uint8_t>(origin.program.size() >> 8);
  std::copy(origin.program.begin(), origin.program.end(), out.begin() + kHeadSize);
  return out;
}

Result<ImageOrigin> decode_image_origin(ByteSpan data) {
  if (data.size() < kHeadSize) {
    return fail(EUCLEAN, "image origin of " + std::to_string(data.size()) + " bytes");
  }
  ImageOrigin origin;
  origin.created_sec = static_cast<int64_t>(load_le64(&data[0]));
  origin.created_nsec = load_le32(&data[8]);
  const size_t program_len = data[12] | (static_cast<size_t>(data[13]) << 8);
  if (data.size() != kHeadSize + program_len) {
    return fail(EUCLEAN, "image origin with a program name of " + std::to_string(program_len) +
                             " bytes in " + std::to_string(data.size()) + " bytes");
  }
  origin.program.assign(data.begin() + kHeadSize, data.end());
  if (const std::string problem = program_problem(origin.program); !problem.empty()) {
    return fail(EUCLEAN, "image origin with " + problem);
  }
  if (origin.created_nsec >= 1'000'000'000) return fail(EUCLEAN, "image origin with a bad time");
  return origin;
}

}  // namespace ecfs::store
