#pragma once
/// \file A small table-driven CRC-32C (Castagnoli) for the wire codec's frame checks.
///
/// Stand-in until the shared `raftkit/detail/crc32c.hpp` lands; then the codec switches
/// to it and this header goes away, so there is one CRC in the tree.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace raftkit::detail::wire_crc {

/// The reflected CRC-32C table (polynomial 0x82F63B78), built at compile time.
inline constexpr std::array<std::uint32_t, 256> table = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}();

/// CRC-32C of `bytes`, continuing from `crc` (0 to start).
inline std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0) noexcept {
  crc = ~crc;
  for (std::byte b : bytes)
    crc = table[(crc ^ static_cast<std::uint32_t>(b)) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace raftkit::detail::wire_crc
