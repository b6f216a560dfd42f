#pragma once
/// \file The on-disk format of raftkit::file::log_store: segment files, their records and
/// the hard state file. Everything here is a pure function of bytes (no I/O), so each rule
/// of the format sits next to the code that writes or checks it.
///
/// ## On disk
/// A directory holds:
///  - `LOCK`: flock'ed while a store has the directory open (a second opener gets `locked`);
///  - `hard_state`: term and vote, replaced atomically (temp file, fsync, rename, fsync dir);
///  - `<16 hex digits>.seg`: segment files, read in id order. A segment is created under a
///    temporary name with its header written, preallocated and fsynced, then renamed into
///    place, so a segment never exists without a valid header. Unwritten space reads as 0.
///
/// Segment header (64 bytes): magic "RKFLOGSG" (8), format version u32 (2), header size u32,
/// the index `f` the segment starts at u64, its id u64, the term of entry `f - 1` u64, flags
/// u32, CRC-32C of the preceding 44 bytes u32. (Version 1 headers, without the term and the
/// flags and with the CRC at byte 32, are still read; their term counts as 0.)
///  - A segment whose first index `f` is not past the log loaded so far *truncates* it:
///    entries `>= f` of earlier segments are void. That is how `truncate_after` is made
///    durable (§5.3): later segments are deleted and a new segment starting at `i + 1` is
///    created. Its header's term must match the log's entry `f - 1` (checked on open).
///  - The oldest segment's header gives `term_at(first_index() - 1)` after a reopen, so the
///    term before a compacted prefix survives: compaction deletes whole segments, oldest
///    first, each removal synced before the next.
///  - A segment flagged *reset* (flag bit 0) begins a new log after (f - 1, term): every
///    earlier segment is void, and removed when found. `reset` creates one (a single
///    rename makes it durable, so a crash reopens the old log or the new one), then deletes
///    the older segments.
///
/// Record (8-byte aligned): payload length u32, CRC-32C u32 (of the length and everything
/// after the CRC), term u64, index u64, meta u64 (type: 8 bits, flags: 8 bits, sync-group
/// sequence: 48 bits), payload. Type 0xFF is a *seal*: the last record of every segment but
/// the newest, carrying the segment's last index. A sync group is everything made durable by
/// one fdatasync; its last record in a file has flag bit 0 set, and flag bit 1 when the
/// group's first bytes were written before the previous group was durable.
///
/// Hard state file (64 bytes): magic "RKFHARDS" (8), version u32 (1), 4 bytes zero, term
/// u64, vote u64, CRC-32C of the preceding 32 bytes u32.
///
/// The format is little-endian (checked at compile time).

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "raftkit/detail/crc32c.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file {

static_assert(std::endian::native == std::endian::little,
              "raftkit::file::log_store writes little-endian records");

namespace detail {

inline constexpr char segment_magic[8] = {'R', 'K', 'F', 'L', 'O', 'G', 'S', 'G'};
inline constexpr char hard_state_magic[8] = {'R', 'K', 'F', 'H', 'A', 'R', 'D', 'S'};
/// Segment format: 2 adds the term of the entry before the segment and the reset flag to
/// the header; version 1 segments (no such fields) are still read.
inline constexpr std::uint32_t format_version = 2;
inline constexpr std::uint32_t hard_state_version = 1;
inline constexpr std::size_t segment_header_size = 64;
/// Segment header flag: a new log begins here (reset); every earlier segment is void.
inline constexpr std::uint32_t segment_flag_reset = 1;
inline constexpr std::size_t record_header_size = 32;
inline constexpr std::size_t hard_state_size = 64;
inline constexpr std::uint8_t seal_type = 0xFF;
inline constexpr std::uint8_t flag_group_end = 1;
/// On a group's last record: the group's first bytes were written while the previous
/// group's fdatasync was still running (see "Threads" above).
inline constexpr std::uint8_t flag_after_unsynced = 2;
inline constexpr std::uint64_t max_seq = (std::uint64_t{1} << 48) - 1;

template <class T>
inline T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

inline constexpr std::size_t pad8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }
inline constexpr std::size_t record_size(std::size_t payload) noexcept {
  return record_header_size + pad8(payload);
}
/// The largest payload a record holds (its length is a 32-bit field).
inline constexpr std::size_t max_payload = 0xFFFFFFFFu - 64;

/// A record header, decoded.
struct record_header {
  std::uint32_t len = 0;
  std::uint32_t crc = 0;
  term_t term = 0;
  index_t index = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint64_t seq = 0;

  static record_header decode(const std::byte* p) noexcept {
    record_header h;
    h.len = load<std::uint32_t>(p);
    h.crc = load<std::uint32_t>(p + 4);
    h.term = load<std::uint64_t>(p + 8);
    h.index = load<std::uint64_t>(p + 16);
    auto meta = load<std::uint64_t>(p + 24);
    h.type = static_cast<std::uint8_t>(meta);
    h.flags = static_cast<std::uint8_t>(meta >> 8);
    h.seq = meta >> 16;
    return h;
  }
};

/// A segment header, decoded (see the file comment for the layout).
struct segment_header {
  index_t first = 0;        ///< index of the segment's first record
  std::uint64_t id = 0;     ///< the number in the file name
  term_t prev_term = 0;     ///< term of entry first - 1 (0 in version 1 segments)
  std::uint32_t flags = 0;  ///< segment_flag_reset
  std::uint32_t version = format_version;

  void encode(std::byte* h) const noexcept {
    std::memset(h, 0, segment_header_size);
    std::memcpy(h, segment_magic, 8);
    store<std::uint32_t>(h + 8, format_version);
    store<std::uint32_t>(h + 12, segment_header_size);
    store<std::uint64_t>(h + 16, first);
    store<std::uint64_t>(h + 24, id);
    store<std::uint64_t>(h + 32, prev_term);
    store<std::uint32_t>(h + 40, flags);
    store<std::uint32_t>(h + 44, raftkit::detail::crc32c(h, 44));
  }
  /// Decodes `n` bytes at `b`; on failure returns why (naming no file).
  static std::optional<std::string> decode(const std::byte* b, std::size_t n, segment_header& out) {
    if (n < segment_header_size || std::memcmp(b, segment_magic, 8) != 0)
      return "not a raftkit log segment (bad magic)";
    const auto v = load<std::uint32_t>(b + 8);
    if (v != 1 && v != format_version) return "unsupported format version " + std::to_string(v);
    const std::size_t crc_at = v == 1 ? 32 : 44;
    if (raftkit::detail::crc32c(b, crc_at) != load<std::uint32_t>(b + crc_at) ||
        load<std::uint32_t>(b + 12) != segment_header_size)
      return "bad segment header at offset 0";
    out.first = load<std::uint64_t>(b + 16);
    out.id = load<std::uint64_t>(b + 24);
    out.prev_term = v == 1 ? 0 : load<std::uint64_t>(b + 32);
    out.flags = v == 1 ? 0 : load<std::uint32_t>(b + 40);
    out.version = v;
    if (out.first == 0) return "segment starts at index 0 at offset 0";
    return std::nullopt;
  }
};

/// CRC of a record laid out at `p` with payload length `len`.
inline std::uint32_t record_crc(const std::byte* p, std::uint32_t len) noexcept {
  return raftkit::detail::crc32c_concat(p, 4, p + 8, record_header_size - 8 + len);
}

/// Encodes a complete record at `p` (flags 0, sync-group sequence `seq`, zero padding,
/// CRC): `record_size(payload.size())` bytes. The CRC is computed here, while the bytes are
/// still in the cache; only a group's last record is touched again (mark_group_end).
inline void encode_record(std::byte* p, term_t term, index_t index, std::uint8_t type,
                          std::uint64_t seq, std::span<const std::byte> payload) noexcept {
  const std::size_t rs = record_size(payload.size());
  store<std::uint64_t>(p + rs - 8, 0);  // padding (overwritten below when there is none)
  const auto len = static_cast<std::uint32_t>(payload.size());
  store<std::uint32_t>(p, len);
  store<std::uint64_t>(p + 8, term);
  store<std::uint64_t>(p + 16, index);
  store<std::uint64_t>(p + 24, std::uint64_t{type} | seq << 16);
  if (len) std::memcpy(p + record_header_size, payload.data(), len);
  store<std::uint32_t>(p + 4, record_crc(p, len));
}

/// Sets the group-end flags of an encoded record and re-seals it with its CRC.
inline void mark_group_end(std::byte* p, std::uint8_t flags = flag_group_end) noexcept {
  store<std::uint64_t>(p + 24, load<std::uint64_t>(p + 24) | std::uint64_t{flags} << 8);
  store<std::uint32_t>(p + 4, record_crc(p, load<std::uint32_t>(p)));
}

/// Whether a complete, verified record starts at `p` with `avail` bytes readable.
inline bool record_valid(const std::byte* p, std::size_t avail, record_header& h) noexcept {
  if (avail < record_header_size) return false;
  h = record_header::decode(p);
  if (h.index == 0) return false;
  if (h.type > static_cast<std::uint8_t>(entry_type::config) && h.type != seal_type) return false;
  if (record_size(h.len) > avail || h.len > avail) return false;
  return record_crc(p, h.len) == h.crc;
}

/// A sync group number g such that every group numbered up to g was durable before record
/// `r` was written. A group is written only once the group two before it is durable; a
/// group's last record says whether the group just before it was durable too (when it lacks
/// flag_after_unsynced). Numbers of consecutively written groups are consecutive.
inline std::uint64_t synced_before(const record_header& r) noexcept {
  const bool one_behind = (r.flags & flag_group_end) && !(r.flags & flag_after_unsynced);
  const std::uint64_t lag = one_behind ? 1 : 2;
  return r.seq > lag ? r.seq - lag : 0;
}

inline bool all_zero(const std::byte* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

inline std::string segment_name(std::uint64_t id) {
  char b[32];
  std::snprintf(b, sizeof b, "%016llx.seg", static_cast<unsigned long long>(id));
  return b;
}

/// Parses "<16 hex>.seg"; nullopt for any other name.
inline std::optional<std::uint64_t> parse_segment_name(const std::string& n) {
  if (n.size() != 20 || n.compare(16, 4, ".seg") != 0) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    char c = n[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

inline bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Encodes the hard state file's 64 bytes.
inline void encode_hard_state(std::byte* b, const hard_state& hs) noexcept {
  std::memset(b, 0, hard_state_size);
  std::memcpy(b, hard_state_magic, 8);
  store<std::uint32_t>(b + 8, hard_state_version);
  store<std::uint64_t>(b + 16, hs.term);
  store<std::uint64_t>(b + 24, hs.vote);
  store<std::uint32_t>(b + 32, raftkit::detail::crc32c(b, 32));
}

/// Decodes `n` bytes of a hard state file; on failure returns why.
inline std::optional<std::string> decode_hard_state(const std::byte* b, std::size_t n, hard_state& out) {
  if (n != hard_state_size || std::memcmp(b, hard_state_magic, 8) != 0)
    return "not a raftkit hard state file (bad magic)";
  if (auto v = load<std::uint32_t>(b + 8); v != hard_state_version)
    return "unsupported format version " + std::to_string(v);
  if (raftkit::detail::crc32c(b, 32) != load<std::uint32_t>(b + 32)) return "checksum mismatch";
  out.term = load<std::uint64_t>(b + 16);
  out.vote = load<std::uint64_t>(b + 24);
  return std::nullopt;
}

/// Thrown inside the store and turned into an error code or a std::system_error.
struct failure {
  errc code;
  std::string what;
};

inline errc errno_code(int neg_errno) noexcept {
  return neg_errno == -ENOSPC || neg_errno == -EDQUOT ? errc::no_space : errc::io_error;
}

/// Throws the failure of a file-system call that returned `neg_errno`, naming `what`.
[[noreturn]] inline void throw_io(int neg_errno, const std::string& what) {
  throw failure{errno_code(neg_errno), what + ": " + std::generic_category().message(-neg_errno)};
}

inline std::string join_path(const std::string& dir, const std::string& name) { return dir + "/" + name; }

}  // namespace detail

}  // namespace raftkit::file
