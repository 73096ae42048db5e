#include "cli/crypt_command.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/crypt_oracle.h"
#include "cli/crypt_request.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "fscrypt oracle: encrypt or decrypt stdin exactly as Linux fscrypt stores data\n"
    "\n"
    "  ecfs crypt [OPTIONS] CIPHER MASTER_KEY_HEX  < input > output\n"
    "  ecfs crypt --dump-key-identifier [--kdf=HKDF-SHA512] MASTER_KEY_HEX\n"
    "\n"
    "Encrypts (or decrypts) standard input to standard output the way fscrypt encrypts\n"
    "file contents and filenames on disk, to check ciphertext written by a kernel or\n"
    "by ecfs. Same options as xfstests' fscrypt-crypt-util, plus --extent-nonce for\n"
    "ecfs's per-extent keys.\n"
    "\n"
    "CIPHER is AES-256-XTS, AES-256-CTS-CBC, AES-128-CBC-ESSIV, AES-128-CTS-CBC,\n"
    "Adiantum or AES-256-HCTR2. MASTER_KEY_HEX is the raw master key in hex (at most\n"
    "64 bytes). Without --kdf the master key itself is the cipher key.\n"
    "\n"
    "Input is processed in data units numbered from --data-unit-index; a final\n"
    "partial unit is zero-padded to the data unit size, or with --padding to the\n"
    "next multiple of the padding (how filenames are padded).";

// Examples last: help2man's EXAMPLES section runs to the end of the text.
constexpr const char* kFooter =
    "Exit status: 0 on success; 1 if reading or writing failed; 2 for bad options or\n"
    "operands, or for a data unit the cipher cannot take (processing stops there).\n"
    "The key is never printed.\n"
    "\n"
    "Examples:\n"
    "  A v2 (HKDF) file's contents, 4096-byte data units, as stored on ext4:\n"
    "    ecfs crypt --kdf=HKDF-SHA512 --file-nonce=$NONCE AES-256-XTS $KEY <plain >cipher\n"
    "\n"
    "  A filename in a v2 directory with 32-byte padding:\n"
    "    opts=\"--kdf=HKDF-SHA512 --file-nonce=$DIR_NONCE --data-unit-size=255 --padding=32\"\n"
    "    printf name | ecfs crypt $opts AES-256-CTS-CBC $KEY\n"
    "\n"
    "  The same data under an ecfs per-extent key, from the 3rd unit of the extent:\n"
    "    opts=\"--kdf=HKDF-SHA512 --extent-nonce=$EXTENT_NONCE --data-unit-index=2\"\n"
    "    ecfs crypt $opts AES-256-XTS $KEY <plain >cipher";

// Adds `--name=VALUE` storing the text in `target` (checked later, by
// parse_crypt_request, so that every message comes from one place).
void add_text_option(CLI::App& command, const std::string& name, std::optional<std::string>& target,
                     const std::string& value_name, const std::string& description) {
  command
      .add_option_function<std::string>(
          "--" + name, [&target](const std::string& value) { target = value; }, description)
      ->type_name(value_name);
}

int run(CryptArgs args) {
  auto request = parse_crypt_request(std::move(args));
  if (!request) {
    print_error("crypt", request.error().message());
    return kExitUsage;
  }
  if (request->dump_key_identifier) {
    auto identifier = key_identifier_hex(*request);
    if (!identifier) {
      print_error("crypt", identifier.error().message());
      return kExitFailure;
    }
    // fscrypt-crypt-util prints the hex with no newline; scripts read it with
    // $(...), which ignores one. Add it only for a person at a terminal.
    if (isatty(STDOUT_FILENO)) identifier->push_back('\n');
    if (std::fputs(identifier->c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
      print_error("crypt", "writing standard output failed");
      return kExitFailure;
    }
    return kExitOk;
  }
  Status done = run_crypt(*request, STDIN_FILENO, STDOUT_FILENO);
  if (!done) {
    print_error("crypt", done.error().message());
    return done.error().errno_value() == EINVAL ? kExitUsage : kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_crypt_command(CLI::App& app, CommandRunner& runner) {
  // The first line of the description is the summary `ecfs --help` lists.
  CLI::App* command = app.add_subcommand("crypt", kDescription);
  command->footer(kFooter);
  // Filled by CLI11 while parsing; shared with the runner, which consumes it.
  auto args = std::make_shared<CryptArgs>();

  command->add_option("operands", args->operands, "[CIPHER] MASTER_KEY_HEX")->type_name("");
  command->add_flag("--decrypt", args->decrypt, "Decrypt instead of encrypt");
  add_text_option(*command, "kdf", args->kdf, "KDF",
                  "Key derivation: AES-128-ECB (v1 policies), HKDF-SHA512 (v2) or none.\n"
                  "Default: none (the master key is the key)");
  add_text_option(*command, "mode-num", args->mode_num, "NUM",
                  "The FSCRYPT_MODE_* number mixed into --direct-key and --iv-ino-lblk-* keys");
  add_text_option(*command, "file-nonce", args->file_nonce, "HEX32",
                  "The file's (for names: the directory's) 16-byte nonce, 32 hex digits");
  add_text_option(*command, "extent-nonce", args->extent_nonce, "HEX32",
                  "ecfs: use the per-extent key of this extent nonce (HKDF context 9);\n"
                  "--data-unit-index then counts from the start of the extent");
  add_text_option(*command, "data-unit-size", args->data_unit_size, "BYTES",
                  "Encrypt each BYTES bytes independently. Default: 4096\n"
                  "(filenames: 255 with --padding)");
  add_text_option(*command, "data-unit-index", args->data_unit_index, "N",
                  "Index of the first data unit, for the IVs. Default: 0");
  add_text_option(*command, "padding", args->padding, "BYTES",
                  "Zero-pad a final partial data unit only to the next multiple of BYTES\n"
                  "(4, 8, 16 or 32 for filenames). Default: pad to the data unit size");
  command->add_flag("--direct-key", args->direct_key,
                    "DIRECT_KEY policies: the IV holds the file nonce and one key serves\n"
                    "all files (Adiantum, AES-256-HCTR2)");
  command->add_flag("--iv-ino-lblk-64", args->iv_ino_lblk_64,
                    "IV_INO_LBLK_64 policies: the IV holds the inode number; one key per\n"
                    "mode and filesystem");
  command->add_flag("--iv-ino-lblk-32", args->iv_ino_lblk_32,
                    "IV_INO_LBLK_32 policies: the IV is the hashed inode number plus the\n"
                    "data unit index, mod 2^32");
  add_text_option(*command, "inode-number", args->inode_number, "INO",
                  "The file's inode number (--iv-ino-lblk-*)");
  add_text_option(*command, "fs-uuid", args->fs_uuid, "UUID",
                  "The filesystem UUID, 32 hex digits (--iv-ino-lblk-* with a KDF)");
  command->add_flag("--dump-key-identifier", args->dump_key_identifier,
                    "Print the v2 key identifier of MASTER_KEY_HEX instead (no CIPHER)");

  command->callback([args, &runner] { runner = [args] { return run(std::move(*args)); }; });
}

}  // namespace ecfs::cli
