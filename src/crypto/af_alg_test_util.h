// Test-only (included by *_test.cc only): the running Linux kernel's
// skcipher algorithms through AF_ALG sockets (Documentation/crypto/
// userspace-if.rst), as a second judge of bit-exactness next to the
// published vectors. Tests skip, saying why, when the kernel was built
// without CONFIG_CRYPTO_USER_API_SKCIPHER or lacks the algorithm.
#pragma once

#include <linux/if_alg.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"

#ifndef SOL_ALG
#define SOL_ALG 279  // include/linux/socket.h; older libc headers lack it
#endif

namespace ecfs::crypto::testing {

// One keyed kernel transform ("tfm" socket). Each operation accepts its own
// request socket, so one object can serve a whole test. Move-only.
class KernelSkcipher {
 public:
  // Binds to skcipher `algorithm` (e.g. "hctr2(aes)") and sets `key`. The
  // error string says why the kernel cannot serve it, for GTEST_SKIP().
  static std::expected<KernelSkcipher, std::string> open(std::string_view algorithm, ByteSpan key) {
    const int tfm = ::socket(AF_ALG, SOCK_SEQPACKET, 0);
    if (tfm < 0) {
      return std::unexpected("AF_ALG sockets are unavailable here (" + errno_text() +
                             "): the kernel lacks CONFIG_CRYPTO_USER_API_SKCIPHER or a sandbox "
                             "forbids the address family");
    }
    KernelSkcipher cipher(tfm);
    sockaddr_alg address = {};
    address.salg_family = AF_ALG;
    std::memcpy(address.salg_type, "skcipher", sizeof("skcipher"));
    if (algorithm.size() >= sizeof(address.salg_name)) {
      return std::unexpected("algorithm name too long for AF_ALG");
    }
    std::memcpy(address.salg_name, algorithm.data(), algorithm.size());
    if (::bind(tfm, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      return std::unexpected("the kernel does not offer skcipher " + std::string(algorithm) + " (" +
                             errno_text() + ")");
    }
    if (::setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key.data(), static_cast<socklen_t>(key.size())) !=
        0) {
      return std::unexpected("the kernel refused the key for " + std::string(algorithm) + " (" +
                             errno_text() + ")");
    }
    return cipher;
  }

  KernelSkcipher(KernelSkcipher&& other) noexcept : tfm_(std::exchange(other.tfm_, -1)) {}
  KernelSkcipher& operator=(KernelSkcipher&&) = delete;
  KernelSkcipher(const KernelSkcipher&) = delete;
  KernelSkcipher& operator=(const KernelSkcipher&) = delete;
  ~KernelSkcipher() {
    if (tfm_ >= 0) ::close(tfm_);
  }

  // Encrypts or decrypts `in` under `iv` in one request.
  std::expected<Bytes, std::string> crypt(bool encrypt, ByteSpan iv, ByteSpan in) const {
    const int request = ::accept(tfm_, nullptr, nullptr);
    if (request < 0) return std::unexpected("AF_ALG accept failed: " + errno_text());
    auto result = run(request, encrypt, iv, in);
    ::close(request);
    return result;
  }

 private:
  explicit KernelSkcipher(int tfm) : tfm_(tfm) {}

  static std::string errno_text() { return std::strerror(errno); }

  // sendmsg with ALG_SET_OP and ALG_SET_IV control messages, then read the
  // result (the kernel processes the request when it is read).
  static std::expected<Bytes, std::string> run(int request, bool encrypt, ByteSpan iv,
                                               ByteSpan in) {
    const size_t iv_payload = sizeof(af_alg_iv) + iv.size();
    std::vector<uint8_t> control(CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(iv_payload), 0);
    msghdr message = {};
    message.msg_control = control.data();
    message.msg_controllen = control.size();

    cmsghdr* op = CMSG_FIRSTHDR(&message);
    op->cmsg_level = SOL_ALG;
    op->cmsg_type = ALG_SET_OP;
    op->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    const uint32_t direction = encrypt ? ALG_OP_ENCRYPT : ALG_OP_DECRYPT;
    std::memcpy(CMSG_DATA(op), &direction, sizeof(direction));

    cmsghdr* iv_header = CMSG_NXTHDR(&message, op);
    iv_header->cmsg_level = SOL_ALG;
    iv_header->cmsg_type = ALG_SET_IV;
    iv_header->cmsg_len = CMSG_LEN(iv_payload);
    const uint32_t iv_length = static_cast<uint32_t>(iv.size());
    uint8_t* iv_data = CMSG_DATA(iv_header);
    std::memcpy(iv_data + offsetof(af_alg_iv, ivlen), &iv_length, sizeof(iv_length));
    std::memcpy(iv_data + offsetof(af_alg_iv, iv), iv.data(), iv.size());

    iovec data = {const_cast<uint8_t*>(in.data()), in.size()};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    const ssize_t sent = ::sendmsg(request, &message, 0);
    if (sent < 0 || static_cast<size_t>(sent) != in.size()) {
      return std::unexpected("AF_ALG sendmsg failed: " + errno_text());
    }

    Bytes out(in.size());
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t got = ::read(request, out.data() + done, out.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return std::unexpected("AF_ALG read failed: " + errno_text());
      done += static_cast<size_t>(got);
    }
    return out;
  }

  int tfm_;
};

}  // namespace ecfs::crypto::testing
