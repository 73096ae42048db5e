// Helpers shared by the keyring tests (keyring_*_test.cc). Only for tests.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "crypto/cipher.h"
#include "fscrypt/keyring.h"
#include "fscrypt/policy.h"

namespace ecfs::fscrypt::test_support {

// xfstests common/encrypt TEST_RAW_KEY: bytes 0x01, 0x02, ..., 0x40.
inline Bytes xfstests_raw_key() {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i + 1);
  return key;
}

inline Bytes filled_key(uint8_t fill, size_t size = 64) { return Bytes(size, fill); }

// A key whose 16-byte blocks all differ (v1's AES-ECB KDF maps equal blocks
// to equal blocks, and XTS rejects a key with equal halves).
inline Bytes patterned_key(uint8_t seed, size_t size = 64) {
  Bytes key(size);
  for (size_t i = 0; i < size; ++i) key[i] = static_cast<uint8_t>(seed + 13 * i);
  return key;
}

// Nonce start, start+1, ..., start+15.
inline Nonce counting_nonce(uint8_t start) {
  Nonce nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(start + i);
  return nonce;
}

inline Caller user(uint32_t uid) { return Caller{.uid = uid, .is_privileged = false}; }
inline Caller root() { return Caller{.uid = 0, .is_privileged = true}; }

inline PolicyV2 v2_policy(const KeyIdentifier& identifier, uint8_t contents = kModeAes256Xts,
                          uint8_t filenames = kModeAes256Cts, uint8_t flags = 0) {
  PolicyV2 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  policy.master_key_identifier = identifier;
  return policy;
}

inline Context v2_context(const KeyIdentifier& identifier, const Nonce& nonce,
                          uint8_t contents = kModeAes256Xts, uint8_t filenames = kModeAes256Cts,
                          uint8_t flags = 0) {
  return make_context(v2_policy(identifier, contents, filenames, flags), nonce);
}

inline Context v1_context(const KeyDescriptor& descriptor, const Nonce& nonce,
                          uint8_t contents = kModeAes256Xts, uint8_t filenames = kModeAes256Cts,
                          uint8_t flags = 0) {
  PolicyV1 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  policy.master_key_descriptor = descriptor;
  return make_context(policy, nonce);
}

// The ciphertext of a fixed 512-byte message under `cipher` with IV
// le64(7): two ciphers agree on it iff (with overwhelming probability) they
// are the same algorithm with the same key.
inline Bytes probe(const crypto::Cipher& cipher) {
  Bytes message(512);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(i * 7 + 3);
  std::array<uint8_t, 32> iv{};
  iv[0] = 7;
  Bytes out(message.size());
  const Status status = cipher.encrypt(ByteSpan(iv).first(cipher.iv_size()), message, out);
  EXPECT_TRUE(status.has_value()) << status.error().to_string();
  return out;
}

}  // namespace ecfs::fscrypt::test_support
