// Where the secrets of `ecfs encrypt`, `unlock` and `protector` come from:
// a passphrase typed on the terminal without echo (asked twice when it is
// new), read from a file descriptor a script passes (--passphrase-fd N, as
// cryptsetup's --key-file=- and gpg's --passphrase-fd), or a key file of
// exactly 32 bytes. Never from argv or the environment, where other users
// and logs can see them. Everything is read straight into locked memory.
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "crypto/secret.h"

namespace ecfs::cli {

// The longest passphrase taken (more is refused, not cut).
inline constexpr size_t kMaxPassphraseBytes = 1024;

struct PassphraseSource {
  std::optional<int> fd;  // --passphrase-fd; otherwise the terminal
};

// Reads one passphrase: from the descriptor, up to a newline or the end
// (the newline is not part of it); or from /dev/tty with echo off after
// `prompt` on stderr, and with `confirm` a second time ("again"), both
// equal. EINVAL with a hint when there is no terminal and no descriptor,
// for an empty passphrase (unless `allow_empty`) or a mismatch; EMSGSIZE
// past kMaxPassphraseBytes.
Result<crypto::SecretBytes> read_passphrase(const PassphraseSource& source,
                                            const std::string& prompt, bool confirm,
                                            bool allow_empty = false);

// A key file of exactly 32 bytes (a protector's key; google/fscrypt's
// raw_key). EINVAL naming the size otherwise.
Result<crypto::SecretBytes> read_protector_key_file(const std::string& path);

}  // namespace ecfs::cli
