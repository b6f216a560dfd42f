#pragma once
/// \file A small seeded generator whose output is the same on every platform
/// (std::uniform_int_distribution is not), so a seed replays exactly.

#include <cstdint>

namespace raftkit::detail {

/// SplitMix64 (Steele, Lea, Flood 2014).
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) noexcept : s_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) (n > 0), by rejection so there is no modulo bias.
  std::uint64_t below(std::uint64_t n) noexcept {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next(); while (x >= limit);
    return x % n;
  }
  /// True with probability p.
  bool chance(double p) noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
  }

 private:
  std::uint64_t s_;
};

}  // namespace raftkit::detail
