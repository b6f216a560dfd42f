#pragma once
/// \file CRC-32C (Castagnoli), used to verify every record of the file log.
///
/// On x86-64 with SSE4.2 the `crc32` instruction is used (checked once at run time with
/// cpuid); elsewhere a slicing-by-8 table computes the same value.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RAFTKIT_CRC32C_X86 1
#include <nmmintrin.h>
#endif

namespace raftkit::detail {

inline constexpr std::uint32_t crc32c_poly = 0x82F63B78u;  // reflected Castagnoli

/// Slicing-by-8 tables, built at compile time.
inline constexpr auto crc32c_tables = [] {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ crc32c_poly : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t i = 0; i < 256; ++i)
    for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  return t;
}();

/// Table implementation; `crc` is the running (non-inverted) register.
inline std::uint32_t crc32c_sw(std::uint32_t crc, const std::byte* p, std::size_t n) noexcept {
  const auto& t = crc32c_tables;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    v ^= crc;  // little-endian: the low 32 bits meet the register
    crc = t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^
          t[4][(v >> 24) & 0xFF] ^ t[3][(v >> 32) & 0xFF] ^ t[2][(v >> 40) & 0xFF] ^
          t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t[0][(crc ^ static_cast<std::uint8_t>(*p++)) & 0xFF];
  return crc;
}

#ifdef RAFTKIT_CRC32C_X86
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hw(std::uint32_t crc,
                                                                   const std::byte* p,
                                                                   std::size_t n) noexcept {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, static_cast<std::uint8_t>(*p++));
  return c32;
}

inline bool crc32c_have_hw() noexcept {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#else
inline bool crc32c_have_hw() noexcept { return false; }
#endif

/// Continues a CRC-32C: `crc32c_extend(crc32c(a), b) == crc32c(a ++ b)`.
inline std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  auto p = static_cast<const std::byte*>(data);
  crc = ~crc;
#ifdef RAFTKIT_CRC32C_X86
  if (crc32c_have_hw()) return ~crc32c_hw(crc, p, n);
#endif
  return ~crc32c_sw(crc, p, n);
}

/// CRC-32C of the concatenation of `na` bytes at `a` and `nb` bytes at `b`, with one
/// dispatch and one call (the file log checksums a record header minus its CRC field this
/// way, for every record).
inline std::uint32_t crc32c_concat(const void* a, std::size_t na, const void* b, std::size_t nb) noexcept {
#ifdef RAFTKIT_CRC32C_X86
  if (crc32c_have_hw()) return ~crc32c_hw(crc32c_hw(~0u, static_cast<const std::byte*>(a), na),
                                           static_cast<const std::byte*>(b), nb);
#endif
  return ~crc32c_sw(crc32c_sw(~0u, static_cast<const std::byte*>(a), na), static_cast<const std::byte*>(b), nb);
}

/// CRC-32C of `n` bytes at `data`.
inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept {
  return crc32c_extend(0, data, n);
}
inline std::uint32_t crc32c(std::span<const std::byte> s) noexcept {
  return crc32c(s.data(), s.size());
}

/// The portable implementation alone (for tests comparing both paths).
inline std::uint32_t crc32c_portable(const void* data, std::size_t n) noexcept {
  return ~crc32c_sw(~0u, static_cast<const std::byte*>(data), n);
}

}  // namespace raftkit::detail
