// The ecfs side of the kernel-as-judge tests: the key and IV parameters ecfs
// derives for one inode from the master key and the inode's stored context,
// through the library (fscrypt/keysetup.h, iv.h), and the `ecfs crypt`
// options that describe the same inode to the command line.
#pragma once

#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fscrypt/iv.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::kernel_test {

// What ecfs needs to en/decrypt one inode's contents, name entries or
// symlink target. Move-only (holds the key).
struct InodeCrypt {
  fscrypt::FileKey key;
  fscrypt::IvParams iv;
};

inline Result<InodeCrypt> setup_inode_crypt(const fscrypt::MasterKeySecret& master_key,
                                            const fscrypt::Context& context, fscrypt::FileKind kind,
                                            uint64_t ino, const fscrypt::FsUuid& fs_uuid) {
  fscrypt::FileKeyParams params;
  params.kind = kind;
  params.inode_number = ino;
  params.fs_uuid = fs_uuid;
  auto key = fscrypt::setup_file_key(master_key, context, params);
  if (!key) return std::unexpected(key.error());
  InodeCrypt crypt{std::move(*key), {}};
  crypt.iv = fscrypt::inode_iv_params(context, ino, crypt.key.hashed_ino);
  return crypt;
}

// `ecfs crypt` options (after the subcommand, before CIPHER) describing the
// key and IVs of an inode with `context`, as xfstests'
// _verify_ciphertext_for_encryption_policy passes them to
// fscrypt-crypt-util: v1 uses AES-128-ECB (or the raw key with DIRECT_KEY),
// v2 HKDF-SHA512 with the flags' options.
inline std::vector<std::string> crypt_cli_key_options(const fscrypt::Context& context,
                                                      uint8_t mode_number, uint64_t ino,
                                                      const fscrypt::FsUuid& fs_uuid) {
  const uint8_t flags = fscrypt::policy_flags(context.policy);
  const std::string nonce = "--file-nonce=" + to_hex(context.nonce);
  std::vector<std::string> options;
  if (fscrypt::policy_version(context.policy) == fscrypt::kPolicyV1) {
    if (flags & fscrypt::kPolicyFlagDirectKey) return {"--kdf=none", "--direct-key", nonce};
    return {"--kdf=AES-128-ECB", nonce};
  }
  options.push_back("--kdf=HKDF-SHA512");
  const std::string mode = "--mode-num=" + std::to_string(mode_number);
  const std::string inode = "--inode-number=" + std::to_string(ino);
  const std::string uuid = "--fs-uuid=" + to_hex(fs_uuid);
  if (flags & fscrypt::kPolicyFlagDirectKey) {
    options.insert(options.end(), {"--direct-key", mode, nonce});
  } else if (flags & fscrypt::kPolicyFlagIvInoLblk64) {
    options.insert(options.end(), {"--iv-ino-lblk-64", mode, inode, uuid});
  } else if (flags & fscrypt::kPolicyFlagIvInoLblk32) {
    options.insert(options.end(), {"--iv-ino-lblk-32", mode, inode, uuid});
  } else {
    options.push_back(nonce);
  }
  return options;
}

}  // namespace ecfs::kernel_test
