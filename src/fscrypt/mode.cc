#include "fscrypt/mode.h"

#include <array>
#include <cerrno>
#include <string>

#include "crypto/adiantum.h"
#include "crypto/aes_cbc_cts.h"
#include "crypto/aes_cbc_essiv.h"
#include "crypto/aes_xts.h"
#include "crypto/hctr2.h"
#include "crypto/sm4_xts.h"

namespace ecfs::fscrypt {
namespace {

// fs/crypto/keysetup.c `fscrypt_modes[]`; names as fscrypt-crypt-util's
// `fscrypt_modes` table spells them. Key sizes are those of the underlying
// algorithms (XTS takes two AES-256 keys); security strengths are the
// strength of the weaker of the parts (SM4 is a 128-bit cipher).
constexpr std::array<ModeInfo, 8> kModes = {{
    {kModeAes256Xts, "AES-256-XTS", "AES-256-XTS", "xts(aes)", 64, 32, 16},
    {kModeAes256Cts, "AES-256-CTS-CBC", "AES-256-CBC-CTS", "cts(cbc(aes))", 32, 32, 16},
    {kModeAes128Cbc, "AES-128-CBC-ESSIV", "AES-128-CBC-ESSIV", "essiv(cbc(aes),sha256)", 16, 16,
     16},
    {kModeAes128Cts, "AES-128-CTS-CBC", "AES-128-CBC-CTS", "cts(cbc(aes))", 16, 16, 16},
    {kModeSm4Xts, "SM4-XTS", "SM4-XTS", "xts(sm4)", 32, 16, 16},
    {kModeSm4Cts, "SM4-CTS-CBC", "SM4-CBC-CTS", "cts(cbc(sm4))", 16, 16, 16},
    {kModeAdiantum, "Adiantum", "Adiantum", "adiantum(xchacha12,aes)", 32, 32, 32},
    {kModeAes256Hctr2, "AES-256-HCTR2", "AES-256-HCTR2", "hctr2(aes)", 32, 32, 32},
}};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::span<const ModeInfo> all_modes() { return kModes; }

const ModeInfo* find_mode(uint8_t number) {
  for (const ModeInfo& mode : kModes) {
    if (mode.number == number) return &mode;
  }
  return nullptr;
}

Result<const ModeInfo*> mode_by_number(uint8_t number) {
  const ModeInfo* mode = find_mode(number);
  if (mode == nullptr) return fail(EINVAL, "unknown encryption mode " + std::to_string(number));
  return mode;
}

Result<const ModeInfo*> mode_by_name(std::string_view name) {
  for (const ModeInfo& mode : kModes) {
    if (equals_ignoring_case(name, mode.name) || equals_ignoring_case(name, mode.kernel_name)) {
      return &mode;
    }
  }
  return fail(EINVAL, "unknown encryption mode '" + std::string(name) + "'");
}

Result<crypto::CipherPtr> prepare_key(const ModeInfo& mode, ByteSpan raw_key) {
  if (raw_key.size() != mode.key_size) {
    return fail(EINVAL, std::string(mode.name) + " takes a " + std::to_string(mode.key_size) +
                            "-byte key, not " + std::to_string(raw_key.size()));
  }
  switch (mode.number) {
    case kModeAes256Xts:
      return crypto::make_aes_xts(raw_key);
    case kModeAes256Cts:
    case kModeAes128Cts:
      return crypto::make_aes_cbc_cts(raw_key);
    case kModeAes128Cbc:
      return crypto::make_aes128_cbc_essiv(raw_key);
    case kModeSm4Xts:
      return crypto::make_sm4_xts(raw_key);
    case kModeSm4Cts:
      return fail(EOPNOTSUPP, "SM4-CTS-CBC is not supported: ecfs has no SM4 CBC-CTS cipher");
    case kModeAdiantum:
      return crypto::make_adiantum(raw_key);
    case kModeAes256Hctr2:
      return crypto::make_aes256_hctr2(raw_key);
  }
  return fail(EINVAL, "unknown encryption mode " + std::to_string(mode.number));
}

Result<crypto::CipherPtr> prepare_key(uint8_t mode_number, ByteSpan raw_key) {
  auto mode = mode_by_number(mode_number);
  if (!mode) return std::unexpected(std::move(mode).error());
  return prepare_key(**mode, raw_key);
}

}  // namespace ecfs::fscrypt
