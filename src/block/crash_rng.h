// A small deterministic generator for crash and fault choices. The standard
// library's distributions differ between implementations; a failing crash
// test must replay from its seed everywhere, so the arithmetic is ours.
#pragma once

#include <cstdint>

namespace ecfs::block {

// SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number
// generators", OOPSLA 2014): a 64-bit counter passed through a mixer.
class CrashRng {
 public:
  explicit CrashRng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // A value in [0, bound); the modulo bias is irrelevant for test choices.
  uint64_t below(uint64_t bound) { return next() % bound; }

 private:
  uint64_t state_;
};

}  // namespace ecfs::block
