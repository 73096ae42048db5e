#include "cli/crypt_request.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <string_view>

#include "base/bytes.h"
#include "fscrypt/master_key_secret.h"

namespace ecfs::cli {
namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Zeroes a string that held key text before its memory is released.
void wipe(std::string& text) {
  crypto::secure_zero({reinterpret_cast<uint8_t*>(text.data()), text.size()});
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the master key straight into locked memory, so that no unlocked
// copy of the key bytes is made. The message never shows the text.
Result<crypto::SecretBytes> parse_master_key(std::string_view hex) {
  if (hex.empty() || hex.size() % 2 != 0)
    return fail(EINVAL, "MASTER_KEY_HEX must be an even, nonzero number of hex digits");
  if (hex.size() / 2 > fscrypt::kMaxKeySize)
    return fail(EINVAL, "the master key is longer than 64 bytes");
  crypto::SecretBytes key(hex.size() / 2);
  for (size_t i = 0; i < key.size(); ++i) {
    int high = hex_digit_value(hex[2 * i]);
    int low = hex_digit_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) return fail(EINVAL, "MASTER_KEY_HEX contains a non-hex character");
    key.data()[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return key;
}

// 16 bytes written as 32 hex digits; `dashes_allowed` also takes the
// 8-4-4-4-12 form in which UUIDs are usually printed (blkid, tune2fs).
Result<std::array<uint8_t, 16>> parse_16_bytes(std::string_view option, std::string text,
                                               bool dashes_allowed) {
  if (dashes_allowed && text.size() == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' &&
      text[23] == '-')
    std::erase(text, '-');
  auto bytes = from_hex(text);
  if (!bytes || bytes->size() != 16)
    return fail(EINVAL, std::string(option) + " must be 32 hex digits" +
                            (dashes_allowed ? " (dashes as in a UUID allowed)" : ""));
  std::array<uint8_t, 16> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// A decimal number in [min, max]; no sign, no spaces, no other base.
Result<uint64_t> parse_decimal(std::string_view option, std::string_view text, uint64_t min,
                               uint64_t max) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max)
    return fail(EINVAL, std::string(option) + " must be a decimal number from " +
                            std::to_string(min) + " to " + std::to_string(max));
  return value;
}

Result<Kdf> parse_kdf(std::string_view text) {
  if (equals_ignoring_case(text, "none")) return Kdf::kNone;
  if (equals_ignoring_case(text, "AES-128-ECB")) return Kdf::kAes128Ecb;
  if (equals_ignoring_case(text, "HKDF-SHA512")) return Kdf::kHkdfSha512;
  return fail(EINVAL, "--kdf must be AES-128-ECB, HKDF-SHA512 or none");
}

// The six ciphers fscrypt-crypt-util knows. The name is not echoed back: a
// user who swapped the operands would see the key in the message.
Result<const fscrypt::ModeInfo*> parse_cipher(std::string_view name) {
  static constexpr std::array<uint8_t, 6> kSupported = {
      fscrypt::kModeAes256Xts, fscrypt::kModeAes256Cts, fscrypt::kModeAes128Cbc,
      fscrypt::kModeAes128Cts, fscrypt::kModeAdiantum,  fscrypt::kModeAes256Hctr2};
  auto mode = fscrypt::mode_by_name(name);
  if (!mode || std::find(kSupported.begin(), kSupported.end(), (*mode)->number) == kSupported.end())
    return fail(EINVAL,
                "unknown CIPHER; expected AES-256-XTS, AES-256-CTS-CBC, AES-128-CBC-ESSIV, "
                "AES-128-CTS-CBC, Adiantum or AES-256-HCTR2");
  return *mode;
}

Status check_master_key_length(const CryptRequest& request) {
  const size_t size = request.master_key.size();
  if (request.dump_key_identifier || request.kdf == Kdf::kHkdfSha512) {
    // The kernel's rules for v2 keys: FS_IOC_ADD_ENCRYPTION_KEY takes 16..64
    // bytes (keyring.c), and a key is used only for modes whose security
    // strength it has (keysetup.c fscrypt_valid_master_key_size).
    if (size < fscrypt::kMinKeySize)
      return fail(EINVAL, "the master key must be at least 16 bytes for HKDF-SHA512");
    if (request.cipher != nullptr && size < request.cipher->security_strength)
      return fail(EINVAL, "the master key is too short for " + std::string(request.cipher->name) +
                              " (it needs " + std::to_string(request.cipher->security_strength) +
                              " bytes)");
    return ok();
  }
  // With no KDF the key bytes are the cipher key; AES-128-ECB encrypts that
  // many bytes of the master key.
  if (size < request.cipher->key_size)
    return fail(EINVAL, "the master key is too short for " + std::string(request.cipher->name) +
                            " (it needs " + std::to_string(request.cipher->key_size) + " bytes)");
  return ok();
}

// The cross-option rules (see the header).
Status check_option_combination(const CryptRequest& request) {
  const bool hkdf = request.kdf == Kdf::kHkdfSha512;
  if (request.dump_key_identifier) return ok();
  if (request.extent_nonce) {
    if (!hkdf) return fail(EINVAL, "--extent-nonce requires --kdf=HKDF-SHA512");
    if (request.file_nonce)
      return fail(EINVAL, "--extent-nonce replaces --file-nonce; give only one");
    if (request.iv_method != IvMethod::kDefault)
      return fail(EINVAL,
                  "--extent-nonce cannot be combined with --direct-key or --iv-ino-lblk-*: "
                  "extent keys exist only for default v2 policies");
  }
  if (request.kdf == Kdf::kAes128Ecb) {
    if (request.iv_method != IvMethod::kDefault)
      return fail(EINVAL, "--kdf=AES-128-ECB is incompatible with IV method options");
    if (!request.file_nonce) return fail(EINVAL, "--kdf=AES-128-ECB requires --file-nonce");
  }
  switch (request.iv_method) {
    case IvMethod::kDefault:
      if (hkdf && !request.file_nonce && !request.extent_nonce)
        return fail(EINVAL,
                    "--kdf=HKDF-SHA512 requires --file-nonce, --extent-nonce or "
                    "--iv-ino-lblk-{64,32}");
      break;
    case IvMethod::kDirectKey:
      if (!request.file_nonce) return fail(EINVAL, "--direct-key requires --file-nonce");
      if (request.cipher->iv_size < 24)
        return fail(EINVAL,
                    "--direct-key needs a cipher with a 32-byte IV (Adiantum or "
                    "AES-256-HCTR2), as the kernel's DIRECT_KEY policies do");
      if (hkdf && request.mode_num == 0)
        return fail(EINVAL, "--direct-key with a KDF requires --mode-num");
      break;
    case IvMethod::kIvInoLblk64:
    case IvMethod::kIvInoLblk32: {
      const std::string flag =
          request.iv_method == IvMethod::kIvInoLblk64 ? "--iv-ino-lblk-64" : "--iv-ino-lblk-32";
      if (request.iv_method == IvMethod::kIvInoLblk32 && !hkdf)
        return fail(EINVAL, "--iv-ino-lblk-32 requires --kdf=HKDF-SHA512");
      if (hkdf && request.mode_num == 0)
        return fail(EINVAL, flag + " with a KDF requires --mode-num");
      if (hkdf && !request.fs_uuid) return fail(EINVAL, flag + " with a KDF requires --fs-uuid");
      if (request.inode_number == 0) return fail(EINVAL, flag + " requires --inode-number");
      if (request.iv_method == IvMethod::kIvInoLblk64 &&
          request.inode_number > std::numeric_limits<uint32_t>::max())
        return fail(EINVAL, "--iv-ino-lblk-64 cannot use an --inode-number above 4294967295");
      if (request.first_data_unit_index > std::numeric_limits<uint32_t>::max())
        return fail(EINVAL, flag + " cannot use a --data-unit-index above 4294967295");
      break;
    }
  }
  return ok();
}

}  // namespace

Result<CryptRequest> parse_crypt_request(CryptArgs args) {
  CryptRequest request;
  request.decrypt = args.decrypt;
  request.dump_key_identifier = args.dump_key_identifier;

  const size_t expected_operands = args.dump_key_identifier ? 1 : 2;
  if (args.operands.size() != expected_operands) {
    for (std::string& operand : args.operands) wipe(operand);
    return fail(EINVAL, args.dump_key_identifier
                            ? "with --dump-key-identifier give only MASTER_KEY_HEX"
                            : "expected the operands CIPHER MASTER_KEY_HEX");
  }
  std::string& key_text = args.operands.back();
  auto master_key = parse_master_key(key_text);
  // The hex text is as secret as the key; do not leave it in freed memory.
  wipe(key_text);
  if (!master_key) return std::unexpected(master_key.error());
  request.master_key = std::move(*master_key);

  if (!args.dump_key_identifier) {
    auto cipher = parse_cipher(args.operands.front());
    if (!cipher) return std::unexpected(cipher.error());
    request.cipher = *cipher;
  }

  if (args.kdf) {
    auto kdf = parse_kdf(*args.kdf);
    if (!kdf) return std::unexpected(kdf.error());
    request.kdf = *kdf;
  }
  if (args.dump_key_identifier) {
    if (args.kdf && request.kdf != Kdf::kHkdfSha512)
      return fail(EINVAL, "--dump-key-identifier requires --kdf=HKDF-SHA512");
    request.kdf = Kdf::kHkdfSha512;
  }

  const int iv_methods = int{args.direct_key} + int{args.iv_ino_lblk_64} + int{args.iv_ino_lblk_32};
  if (iv_methods > 1)
    return fail(EINVAL,
                "conflicting IV methods: give at most one of --direct-key, --iv-ino-lblk-64, "
                "--iv-ino-lblk-32");
  if (args.direct_key) request.iv_method = IvMethod::kDirectKey;
  if (args.iv_ino_lblk_64) request.iv_method = IvMethod::kIvInoLblk64;
  if (args.iv_ino_lblk_32) request.iv_method = IvMethod::kIvInoLblk32;

  if (args.mode_num) {
    auto value = parse_decimal("--mode-num", *args.mode_num, 1, 255);
    if (!value) return std::unexpected(value.error());
    request.mode_num = static_cast<uint8_t>(*value);
  }
  if (args.file_nonce) {
    auto value = parse_16_bytes("--file-nonce", *args.file_nonce, false);
    if (!value) return std::unexpected(value.error());
    request.file_nonce = *value;
  }
  if (args.extent_nonce) {
    auto value = parse_16_bytes("--extent-nonce", *args.extent_nonce, false);
    if (!value) return std::unexpected(value.error());
    request.extent_nonce = *value;
  }
  if (args.fs_uuid) {
    auto value = parse_16_bytes("--fs-uuid", *args.fs_uuid, true);
    if (!value) return std::unexpected(value.error());
    request.fs_uuid = *value;
  }
  if (args.inode_number) {
    auto value = parse_decimal("--inode-number", *args.inode_number, 1,
                               std::numeric_limits<uint64_t>::max());
    if (!value) return std::unexpected(value.error());
    request.inode_number = *value;
  }
  if (args.data_unit_size) {
    auto value = parse_decimal("--data-unit-size", *args.data_unit_size,
                               CryptRequest::kMinDataUnitSize, CryptRequest::kMaxDataUnitSize);
    if (!value) return std::unexpected(value.error());
    request.data_unit_size = *value;
  }
  if (args.data_unit_index) {
    auto value = parse_decimal("--data-unit-index", *args.data_unit_index, 0,
                               std::numeric_limits<uint64_t>::max());
    if (!value) return std::unexpected(value.error());
    request.first_data_unit_index = *value;
  }
  if (args.padding) {
    auto value = parse_decimal("--padding", *args.padding, 1, uint64_t{1} << 30);
    if (!value || (*value & (*value - 1)) != 0)
      return fail(EINVAL, "--padding must be a power of two (4, 8, 16 or 32 for filenames)");
    request.padding = *value;
  }

  ECFS_TRY(check_master_key_length(request));
  ECFS_TRY(check_option_combination(request));
  return request;
}

}  // namespace ecfs::cli
