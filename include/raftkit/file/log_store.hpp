#pragma once
/// \file raftkit::file::log_store — a durable, crash-safe, file-backed Raft log.
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
/// ## Recovery
/// Every record is verified. A record that fails in a sealed (non-newest) segment, or an
/// unsealed older segment, refuses to open with `errc::corrupt_log` naming file and offset.
/// In the newest segment, bytes after the last good record that are not all zero are either
/// a torn write (cut off, zeroed, and reported in `recovery()`) or corruption of data that
/// was once durable — told apart by the sync-group sequence: if a valid record follows the
/// bad bytes that was written after the bad record's group was durable (its group is two
/// later, or one later and its last record lacks flag bit 1), that group had completed its
/// fdatasync, so it is corruption and the store refuses to open. (Corruption of the last
/// one or two synced groups is indistinguishable from a torn write and is cut.)
///
/// ## Threads
/// `append`, `truncate_after`, `compact_before`, `reset`, `at`, `term_at`, `first_index`,
/// `last_index`, `save_hard_state`, `load_hard_state` belong to one owner thread. It hands
/// entries to a writer thread without copying payloads or touching their reference counts
/// (it keeps what it drops alive until the writer is past it). The writer encodes records
/// (CRC included) into a buffer; a sync thread makes them durable with one fdatasync per
/// group (group commit) and advances `durable_index()` (thread-safe). While a group is
/// being synced the writer gathers the next one and already writes it in chunks of
/// max_batch_bytes / 8, all but its last record; when the sync returns it writes the rest
/// and hands the group over at once. So the disk never waits for the CPU, and at most two
/// groups are ever unsynced — the group being synced and the open one — which recovery
/// relies on. A group is closed at max_batch_bytes. Any failed write or sync is fatal:
/// `error()` reports it (`no_space` for ENOSPC, else `io_error`) and durability never
/// advances again.
///
/// Errors found while opening are thrown as `std::system_error` holding a `raftkit::errc`
/// (`corrupt_log`, `locked`, `io_error`, `no_space`) and a message naming the file.
/// The format is little-endian (checked at compile time).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <bit>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/detail/crc32c.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/file/posix_fs.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file {

static_assert(std::endian::native == std::endian::little,
              "raftkit::file::log_store writes little-endian records");

/// Tuning of a file log store.
struct options {
  /// Size a segment is preallocated to; the log rolls to a new segment when full.
  std::uint64_t segment_size = 64u << 20;
  /// Bytes the writer gathers at most before one write + fdatasync.
  std::size_t max_batch_bytes = 8u << 20;
};

/// fdatasync latency of a store: calls, their total and their longest duration.
struct sync_stats {
  std::uint64_t count = 0;
  std::uint64_t total_ns = 0;
  std::uint64_t max_ns = 0;
};

/// What opening the store found.
struct recovery_report {
  std::size_t segments = 0;       ///< segment files read
  std::size_t segments_removed = 0;  ///< older segments found void (before a reset) and removed
  std::size_t entries = 0;        ///< entries recovered
  bool tail_cut = false;          ///< a torn tail was cut off the newest segment
  std::string tail_file;          ///< ...in this file
  std::uint64_t tail_offset = 0;  ///< ...from this offset
  std::uint64_t tail_bytes = 0;   ///< ...this many non-zero bytes were discarded
};

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

/// Thrown inside the store and turned into an error code or a std::system_error.
struct failure {
  errc code;
  std::string what;
};

inline errc errno_code(int neg_errno) noexcept {
  return neg_errno == -ENOSPC || neg_errno == -EDQUOT ? errc::no_space : errc::io_error;
}

}  // namespace detail

/// A file-backed Raft log; `FS` is the file-system policy (real POSIX by default).
template <file_system FS = posix_fs>
class basic_log_store {
 public:
  /// Opens (creating if needed) the log in directory `dir` and recovers it.
  /// Throws std::system_error with a raftkit::errc on failure (see the file comment).
  explicit basic_log_store(std::string dir, options opts = {}, FS fs = FS{})
      : fs_(std::move(fs)), dir_(std::move(dir)), opts_(opts) {
    try {
      open_dir();
    } catch (const detail::failure& f) {
      release_files();
      throw std::system_error(make_error_code(f.code), f.what);
    }
    syncer_ = std::thread([this] { run_syncer(); });
    writer_ = std::thread([this] { run(); });
  }
  basic_log_store(const basic_log_store&) = delete;
  basic_log_store& operator=(const basic_log_store&) = delete;

  /// Writes and syncs everything appended so far, then closes the files.
  ~basic_log_store() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_one();
    writer_.join();
    {
      std::lock_guard lk(mu_);
      sync_stop_ = true;
    }
    sync_cv_.notify_all();
    syncer_.join();
    release_files();
  }

  // --- raftkit::log_store -------------------------------------------------------------

  /// First index held (1 on a fresh store; after compaction the first kept index).
  index_t first_index() const noexcept { return first_; }
  /// Last index held; first_index() - 1 when empty.
  index_t last_index() const noexcept { return first_ + entries_.size() - 1; }
  /// Term of entry `i`; for first_index() - 1 the term of the entry before the first held
  /// (the last compacted one, or the term given to reset); 0 when not held.
  term_t term_at(index_t i) const noexcept {
    if (i + 1 == first_) return base_term_;
    return i >= first_ && i <= last_index() ? entries_[i - first_].term : 0;
  }
  /// Entry `i`, sharing its payload; precondition first_index() <= i <= last_index().
  const entry& at(index_t i) const {  // not noexcept: RAFTKIT_ASSERT may throw if a user redefines it
    RAFTKIT_ASSERT(i >= first_ && i <= last_index(), "file::log_store::at out of range");
    return entries_[i - first_];
  }
  /// Highest index known to be on stable storage. Thread-safe.
  index_t durable_index() const noexcept { return durable_.load(std::memory_order_acquire); }

  /// Appends entries starting at last_index() + 1; returns at once, durability follows.
  /// Precondition: every payload is at most max_payload bytes.
  void append(std::span<const entry> es) {
    if (es.empty()) return;
    // The copies below touch every payload's reference count; for payloads not in the
    // cache, fetching them a few entries ahead overlaps the misses.
    constexpr std::size_t ahead = 8;
    for (std::size_t k = 0; k < std::min(ahead, es.size()); ++k) es[k].payload.prefetch();
    for (std::size_t k = 0; k < es.size(); ++k) {
      if (k + ahead < es.size()) es[k + ahead].payload.prefetch();
      const entry& e = es[k];
      RAFTKIT_ASSERT(e.index == last_index() + 1, "file::log_store::append: not contiguous");
      RAFTKIT_ASSERT(e.payload.size() <= max_payload, "file::log_store::append: payload too large");
      entries_.push_back(e);
    }
    bool wake;
    {
      std::lock_guard lk(mu_);
      if (failed_) return;
      // The writer reads the payloads through plain pointers: entries_ keeps them alive,
      // and whatever truncate_after/compact_before drop before the writer has encoded it
      // is parked in retired_ until then. No reference count is touched on two threads.
      for (const entry& e : es) {
        ops_.push_back(op{op_kind::append, static_cast<std::uint8_t>(e.type),
                          static_cast<std::uint32_t>(e.payload.size()), e.term, e.index,
                          e.payload.data()});
        ops_bytes_ += detail::record_size(e.payload.size());
      }
      ++submitted_;
      wake = writer_idle_ && writer_has_work();
    }
    if (wake) work_cv_.notify_one();  // a futex call only when the writer waits for this
  }

  /// The largest payload a record holds.
  static constexpr std::size_t max_payload = std::numeric_limits<std::uint32_t>::max() - 64;

  /// Removes every entry after `i` (§5.3). durable_index() drops to at most `i` at once; the
  /// removal reaches the disk in order with later appends (before any of them is durable).
  void truncate_after(index_t i) {
    if (i >= last_index()) return;
    RAFTKIT_ASSERT(i + 1 >= first_, "file::log_store::truncate_after below first_index");
    const index_t durable = durable_.load(std::memory_order_acquire);
    std::vector<shared_bytes> keep;
    for (std::size_t k = i + 1 - first_; k < entries_.size(); ++k)
      if (entries_[k].index > durable && !entries_[k].payload.empty())
        keep.push_back(std::move(entries_[k].payload));
    entries_.resize(i + 1 - first_);
    {
      std::lock_guard lk(mu_);
      ++trunc_issued_;
      floor_ = std::min(floor_, i);
      if (durable_.load(std::memory_order_relaxed) > i) durable_.store(i, std::memory_order_release);
      retire(std::move(keep));
      if (failed_) return;
      ops_.push_back(op{op_kind::truncate, 0, 0, term_at(i), i, nullptr});
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// Forgets entries below min(i, durable_index() + 1) (a snapshot covers them), for any
  /// `i`: in memory at once; on disk the segments holding only entries below that are
  /// deleted, oldest first, each removal synced, so a reopened store may start somewhat
  /// below it and a crash at any moment reopens a contiguous log. term_at(first_index() - 1)
  /// stays the last dropped entry's term, also after a reopen (each segment header holds
  /// the term of the entry before it).
  void compact_before(index_t i) {
    const index_t durable = durable_.load(std::memory_order_acquire);
    i = std::min({i, durable + 1, last_index() + 1});
    if (i <= first_) return;
    // Everything dropped is durable, so the writer has encoded it and reads none of it.
    base_term_ = entries_[i - 1 - first_].term;
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(i - first_));
    first_ = i;
    {
      std::lock_guard lk(mu_);
      if (failed_) return;
      ops_.push_back(op{op_kind::compact, 0, 0, 0, i, nullptr});
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// Drops the whole log: afterwards it is empty and continues after (i, t) (a snapshot at
  /// (i, t) replaces it). On disk a segment starting at i + 1 and flagged as a reset is
  /// created (fsynced, renamed, directory fsynced: the reset is durable in one step, so a
  /// crash reopens the old log or the reset one), then every older segment is deleted.
  /// Ordered before later appends like a truncation; durable_index() is at most the lower
  /// of `i` and its value before until the reset is on disk, then `i`.
  void reset(index_t i, term_t t) {
    const index_t durable = durable_.load(std::memory_order_acquire);
    std::vector<shared_bytes> keep;
    for (entry& e : entries_)
      if (e.index > durable && !e.payload.empty()) keep.push_back(std::move(e.payload));
    entries_.clear();
    first_ = i + 1;
    base_term_ = t;
    {
      std::lock_guard lk(mu_);
      ++trunc_issued_;
      const index_t cap = std::min(i, durable_.load(std::memory_order_relaxed));
      floor_ = std::min(floor_, cap);
      durable_.store(cap, std::memory_order_release);
      retire(std::move(keep));
      if (failed_) return;
      ops_.push_back(op{op_kind::reset, 0, 0, t, i, nullptr});
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// The persisted term and vote (zeros on a fresh store).
  hard_state load_hard_state() const noexcept { return hard_; }

  /// Persists term and vote atomically; durable when it returns. On failure the store
  /// turns failed (see error()) and the previous hard state stays on disk.
  void save_hard_state(const hard_state& hs) {
    if (failed()) return;
    try {
      write_hard_state(hs);
      hard_ = hs;
    } catch (const detail::failure& f) {
      fail(f);
    }
  }

  // --- optional capabilities ----------------------------------------------------------

  /// A fatal storage failure, or an empty code. Thread-safe.
  std::error_code error() const {
    std::lock_guard lk(mu_);
    return error_;
  }
  /// The failure's description (file and call). Thread-safe.
  std::string error_message() const {
    std::lock_guard lk(mu_);
    return error_what_;
  }

  /// Sets a function called *on the store's sync thread* each time durable_index() advances,
  /// with the new value. It must be quick and must not call back into the store except
  /// durable_index(); an owner on another thread posts it to its own executor (the Asio
  /// driver posts it onto the node's strand). A value may be overtaken by a concurrent
  /// truncate_after: re-read durable_index() on the owner's thread.
  void set_durable_handler(std::function<void(index_t)> h) {
    std::lock_guard lk(handler_mu_);
    handler_ = std::move(h);
  }

  /// Blocks until durable_index() >= i or the store fails; returns error().
  /// Precondition: i <= last_index().
  std::error_code wait_durable(index_t i) {
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [&] { return failed_ || durable_.load(std::memory_order_relaxed) >= i; });
    return error_;
  }

  /// Blocks until every operation issued so far (appends, truncations, compactions) is on
  /// stable storage, or the store fails; returns error().
  std::error_code flush() {
    std::unique_lock lk(mu_);
    auto target = submitted_;
    done_cv_.wait(lk, [&] { return failed_ || completed_ >= target; });
    return error_;
  }

  /// What opening the store found.
  const recovery_report& recovery() const noexcept { return report_; }
  /// The directory of this store.
  const std::string& directory() const noexcept { return dir_; }
  /// Number of fdatasync calls the writer made for log records (for benchmarks).
  std::uint64_t sync_count() const noexcept { return syncs_.load(std::memory_order_relaxed); }
  /// fdatasync latency so far (for metrics); readable from any thread.
  sync_stats fsync_stats() const noexcept {
    return {sync_calls_.load(std::memory_order_relaxed), sync_total_ns_.load(std::memory_order_relaxed),
            sync_max_ns_.load(std::memory_order_relaxed)};
  }

 private:
  enum class op_kind : std::uint8_t { append, truncate, compact, reset };
  /// What the owner hands the writer: an entry to encode (its payload borrowed, see append),
  /// or a truncation/compaction/reset at `index` (`term`: of entry `index` for a truncation
  /// or reset, which the segment started after it records).
  struct op {
    op_kind kind;
    std::uint8_t type;
    std::uint32_t len;
    term_t term;
    index_t index;
    const std::byte* data;
  };
  /// Payloads dropped by the owner that ops up to number `upto` may still point into.
  struct retirement {
    std::uint64_t upto;
    std::vector<shared_bytes> payloads;
  };
  struct segment {
    std::uint64_t id;
    index_t first;
  };

  // ---------------------------------------------------------------- opening, recovery

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  [[noreturn]] void throw_io(int neg_errno, const std::string& what) const {
    throw detail::failure{detail::errno_code(neg_errno),
                          what + ": " + std::generic_category().message(-neg_errno)};
  }
  [[noreturn]] void throw_corrupt(const std::string& file, std::uint64_t off,
                                  const std::string& why) const {
    throw detail::failure{errc::corrupt_log, path(file) + ": " + why + " at offset " +
                                                 std::to_string(off)};
  }

  void open_dir() {
    if (int r = fs_.make_dir(dir_); r < 0) throw_io(r, "mkdir " + dir_);
    int l = fs_.lock(path("LOCK"));
    if (l == -EWOULDBLOCK || l == -EAGAIN)
      throw detail::failure{errc::locked, path("LOCK") + ": directory in use by another store"};
    if (l < 0) throw_io(l, "lock " + path("LOCK"));
    lock_fd_ = l;

    std::vector<std::string> names;
    if (int r = fs_.list_dir(dir_, names); r < 0) throw_io(r, "list " + dir_);
    std::vector<std::pair<std::uint64_t, std::string>> segs;
    for (const auto& n : names) {
      if (detail::ends_with(n, ".tmp")) {
        // an unfinished segment creation or hard-state replacement: never became visible
        if (int r = fs_.unlink(path(n)); r < 0) throw_io(r, "unlink " + path(n));
      } else if (detail::ends_with(n, ".seg")) {
        auto id = detail::parse_segment_name(n);
        if (!id) throw detail::failure{errc::corrupt_log, path(n) + ": not a raftkit segment name"};
        segs.emplace_back(*id, n);
      }
    }
    std::sort(segs.begin(), segs.end());
    read_hard_state();

    // Headers first: the newest reset segment voids every segment before it (do_reset), so
    // those are removed unread.
    std::vector<detail::segment_header> heads;
    std::size_t start = 0;
    for (std::size_t k = 0; k < segs.size(); ++k) {
      heads.push_back(read_segment_header(segs[k].first, segs[k].second));
      if (heads.back().flags & detail::segment_flag_reset) start = k;
    }
    for (std::size_t k = 0; k < start; ++k)
      if (int r = fs_.unlink(path(segs[k].second)); r < 0) throw_io(r, "unlink " + path(segs[k].second));
    report_.segments_removed = start;

    first_ = 1;
    base_term_ = 0;
    next_seq_ = 1;
    next_id_ = 1;
    for (std::size_t k = start; k < segs.size(); ++k)
      load_segment(segs[k].second, heads[k], k + 1 == segs.size(), k == start);
    if (!segs.empty()) next_id_ = segs.back().first + 1;
    report_.segments = segs.size() - start;
    report_.entries = entries_.size();
    sync_recovered();
    written_last_ = buf_last_ = last_index();
    last_term_ = term_at(last_index());
    durable_.store(last_index(), std::memory_order_relaxed);
    floor_ = std::numeric_limits<index_t>::max();
  }

  /// What recovery read may still be only in the page cache (a process crash keeps
  /// unsynced writes readable): make it durable before it is reported durable, acknowledged
  /// or voted by (hardening finding 3). The segments kept, the hard state, and the
  /// directory (renames and removals not yet synced, and the .tmp files removed above).
  void sync_recovered() {
    for (const segment& sg : segs_) {
      const std::string p = path(detail::segment_name(sg.id));
      int fd = sg.id == segs_.back().id && cur_fd_ >= 0 ? cur_fd_ : fs_.open(p, false);
      if (fd < 0) throw_io(fd, "open " + p);
      int r = fs_.fsync(fd);
      if (fd != cur_fd_) fs_.close(fd);
      if (r < 0) throw_io(r, "fsync " + p);
    }
    if (int fd = fs_.open(path("hard_state"), false); fd >= 0) {
      int r = fs_.fsync(fd);
      fs_.close(fd);
      if (r < 0) throw_io(r, "fsync " + path("hard_state"));
    } else if (fd != -ENOENT) {
      throw_io(fd, "open " + path("hard_state"));
    }
    if (int r = fs_.sync_dir(dir_); r < 0) throw_io(r, "fsync " + dir_);
  }

  void read_hard_state() {
    int fd = fs_.open(path("hard_state"), false);
    if (fd == -ENOENT) return;
    if (fd < 0) throw_io(fd, "open " + path("hard_state"));
    std::byte b[detail::hard_state_size];
    long long n = fs_.pread(fd, b, sizeof b, 0);
    fs_.close(fd);
    if (n < 0) throw_io(static_cast<int>(n), "read " + path("hard_state"));
    if (n != static_cast<long long>(sizeof b) ||
        std::memcmp(b, detail::hard_state_magic, 8) != 0)
      throw detail::failure{errc::corrupt_log, path("hard_state") + ": not a raftkit hard state file (bad magic)"};
    if (auto v = detail::load<std::uint32_t>(b + 8); v != detail::hard_state_version)
      throw detail::failure{errc::corrupt_log, path("hard_state") + ": unsupported format version " + std::to_string(v)};
    if (raftkit::detail::crc32c(b, 32) != detail::load<std::uint32_t>(b + 32))
      throw detail::failure{errc::corrupt_log, path("hard_state") + ": checksum mismatch"};
    hard_.term = detail::load<std::uint64_t>(b + 16);
    hard_.vote = detail::load<std::uint64_t>(b + 24);
  }

  void write_hard_state(const hard_state& hs) {
    std::byte b[detail::hard_state_size] = {};
    std::memcpy(b, detail::hard_state_magic, 8);
    detail::store<std::uint32_t>(b + 8, detail::hard_state_version);
    detail::store<std::uint64_t>(b + 16, hs.term);
    detail::store<std::uint64_t>(b + 24, hs.vote);
    detail::store<std::uint32_t>(b + 32, raftkit::detail::crc32c(b, 32));
    const std::string tmp = path("hard_state.tmp"), dst = path("hard_state");
    int fd = fs_.open(tmp, true);
    if (fd < 0) throw_io(fd, "create " + tmp);
    long long w = fs_.pwrite(fd, b, sizeof b, 0);
    int s = w < 0 ? 0 : fs_.fsync(fd);
    fs_.close(fd);
    if (w < 0) throw_io(static_cast<int>(w), "write " + tmp);
    if (s < 0) throw_io(s, "fsync " + tmp);
    if (int r = fs_.rename(tmp, dst); r < 0) throw_io(r, "rename " + tmp);
    if (int r = fs_.sync_dir(dir_); r < 0) throw_io(r, "fsync " + dir_);
  }

  /// Reads and verifies the header of segment file `name` (number `id`).
  detail::segment_header read_segment_header(std::uint64_t id, const std::string& name) {
    const std::string p = path(name);
    int fd = fs_.open(p, false);
    if (fd < 0) throw_io(fd, "open " + p);
    std::byte b[detail::segment_header_size];
    long long n = fs_.pread(fd, b, sizeof b, 0);
    fs_.close(fd);
    if (n < 0) throw_io(static_cast<int>(n), "read " + p);
    detail::segment_header h;
    if (auto why = detail::segment_header::decode(b, static_cast<std::size_t>(n), h))
      throw detail::failure{errc::corrupt_log, p + ": " + *why};
    if (h.id != id) throw_corrupt(name, 0, "bad segment header");
    return h;
  }

  /// Reads and verifies one segment (its header `hd` already read), adding its entries to
  /// the log.
  void load_segment(const std::string& name, const detail::segment_header& hd, bool newest, bool oldest) {
    const std::string p = path(name);
    int fd = fs_.open(p, false);
    if (fd < 0) throw_io(fd, "open " + p);
    long long sz = fs_.size(fd);
    if (sz < 0) {
      fs_.close(fd);
      throw_io(static_cast<int>(sz), "stat " + p);
    }
    std::vector<std::byte> buf(static_cast<std::size_t>(sz));
    long long n = fs_.pread(fd, buf.data(), buf.size(), 0);
    if (n != sz) {
      fs_.close(fd);
      throw_io(n < 0 ? static_cast<int>(n) : -EIO, "read " + p);
    }
    const std::byte* b = buf.data();
    const std::size_t size = buf.size();
    const index_t first = hd.first;
    if (oldest) {
      first_ = first;
      base_term_ = hd.prev_term;
    } else {
      // a segment starting inside the log loaded so far voids the entries from there (§5.3)
      if (first < first_ || first > last_index() + 1) {
        fs_.close(fd);
        throw_corrupt(name, 0, "segment starts at index " + std::to_string(first) +
                                   " but the log holds " + std::to_string(first_) + ".." +
                                   std::to_string(last_index()));
      }
      if (hd.version >= 2 && hd.prev_term != term_at(first - 1)) {
        fs_.close(fd);
        throw_corrupt(name, 0, "segment header gives entry " + std::to_string(first - 1) + " term " +
                                   std::to_string(hd.prev_term) + " but the log holds term " +
                                   std::to_string(term_at(first - 1)));
      }
      entries_.resize(first - first_);
    }
    segs_.push_back(segment{hd.id, first});

    // records
    std::size_t off = detail::segment_header_size;
    term_t last_term = entries_.empty() ? 0 : entries_.back().term;
    std::uint64_t last_seq = next_seq_ - 1;  // sequences never decrease along the log
    bool sealed = false;
    detail::record_header h;
    for (;;) {
      const bool ok = detail::record_valid(b + off, size - off, h) && h.seq >= last_seq &&
                      (h.type == detail::seal_type
                           ? h.index == last_index()
                           : h.index == last_index() + 1 && h.term >= last_term);
      if (!ok) break;
      last_seq = h.seq;
      if (h.type == detail::seal_type) {
        off += detail::record_size(h.len);
        sealed = true;
        break;
      }
      last_term = h.term;
      entries_.push_back(entry{h.term, h.index, static_cast<entry_type>(h.type),
                               shared_bytes::copy_of(std::span<const std::byte>(
                                   b + off + detail::record_header_size, h.len))});
      off += detail::record_size(h.len);
    }
    next_seq_ = last_seq + 1;

    if (!newest) {
      fs_.close(fd);
      if (!sealed) throw_corrupt(name, off, "bad record");
      return;
    }
    if (sealed) {  // the newest segment is complete; the next append opens a new one
      fs_.close(fd);
      return;
    }
    cur_fd_ = fd;
    cur_off_ = off;
    cur_cap_ = size;
    if (detail::all_zero(b + off, size - off)) return;  // the normal, preallocated tail

    // Non-zero bytes after the last good record: a torn write, or lost durable data?
    // The bad record's sync group is at most the lowest group m of the valid records after
    // it (groups only grow along a file). If one of those records was written when every
    // group up to m was already durable (detail::synced_before), the bad record had been
    // synced: this is corruption. After a torn write no record can claim that.
    std::uint64_t lowest_after = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t claimed = 0;  // the highest group some later record says was durable
    std::uint64_t max_seen = last_seq;
    for (std::size_t o = off; o + detail::record_header_size <= size; o += 8) {
      detail::record_header r;
      if (!detail::record_valid(b + o, size - o, r)) continue;
      max_seen = std::max(max_seen, r.seq);
      lowest_after = std::min(lowest_after, r.seq);
      claimed = std::max(claimed, detail::synced_before(r));
    }
    const bool corrupt = claimed > 0 && claimed >= lowest_after;
    if (corrupt) {
      fs_.close(fd);
      cur_fd_ = -1;
      throw_corrupt(name, off, "bad record followed by later durable records");
    }
    // cut: zero the torn bytes durably before anything new is written after them
    std::size_t end = size;
    while (end > off && b[end - 1] == std::byte{0}) --end;
    end = std::min(detail::pad8(end), size);
    report_.tail_cut = true;
    report_.tail_file = name;
    report_.tail_offset = off;
    report_.tail_bytes = end - off;
    std::vector<std::byte> zeros(end - off);
    if (long long w = fs_.pwrite(fd, zeros.data(), zeros.size(), off); w < 0)
      throw_io(static_cast<int>(w), "zero torn tail of " + p);
    if (int r = fs_.fdatasync(fd); r < 0) throw_io(r, "fdatasync " + p);
    next_seq_ = max_seen + 1;
  }

  void release_files() {
    if (cur_fd_ >= 0) fs_.close(cur_fd_);
    cur_fd_ = -1;
    if (lock_fd_ >= 0) fs_.unlock(lock_fd_);
    lock_fd_ = -1;
  }

  // ---------------------------------------------------------------- writer thread
  //
  // Group commit: the writer encodes ops into buf_ (CRC computed as each record is
  // encoded). While the sync thread is busy with the previous group it keeps gathering, up
  // to max_batch_bytes, and writes what it gathers in parts of part_bytes() (write_partial);
  // as soon as the sync thread is free, the rest is written and the group handed over for
  // one fdatasync (flush_group). So a lone append is written at once, and under load each
  // fdatasync covers everything that arrived during the previous one.

  void run() {
    std::vector<op> batch;
    for (;;) {
      std::uint64_t taken;
      {
        std::unique_lock lk(mu_);
        writer_idle_ = true;
        work_cv_.wait(lk, [&] { return writer_has_work(); });
        writer_idle_ = false;
        if (failed_ || (ops_.empty() && buf_len_ == 0)) break;
        batch.swap(ops_);
        ops_bytes_ = 0;
        taken = submitted_;
      }
      try {
        for (const op& o : batch) apply(o);
        buf_taken_ = taken;
        release_retired(taken);
        if (buf_len_ > 0) {
          if (!sync_busy()) flush_group();  // else: gather more until the disk is free
        } else {
          complete_when_synced(taken);
        }
      } catch (const detail::failure& f) {
        fail(f);
        break;
      }
      batch.clear();
    }
    try {
      wait_sync();
    } catch (const detail::failure&) {
    }
    if (cur_fd_ >= 0) fs_.close(cur_fd_);
    cur_fd_ = -1;
  }

  /// Under mu_: whether the writer has something to do. While a group is being synced it
  /// waits for that, unless part_bytes() of records have queued up meanwhile (those it
  /// encodes at once, so the next write is ready when the sync returns). Otherwise any op
  /// wakes it: a lone append is written without delay.
  /// buf_len_ belongs to the writer: the owner calls this only while writer_idle_, when the
  /// writer is parked on mu_ and its last write of buf_len_ happened before.
  bool writer_has_work() const {
    if (failed_) return true;
    if (buf_len_ > 0 && !sync_pending_) return true;
    if (!ops_.empty() && (!sync_pending_ || ops_bytes_ >= part_bytes())) return true;
    return buf_len_ == 0 && stop_;
  }
  /// Bytes the writer gathers before it writes part of an open group; also what wakes it
  /// while a sync runs.
  std::size_t part_bytes() const noexcept { return std::max<std::size_t>(opts_.max_batch_bytes / 8, 64); }

  /// Frees payloads the owner dropped once no op the writer has yet to read points into them.
  void release_retired(std::uint64_t taken) {
    std::vector<retirement> done;
    {
      std::lock_guard lk(mu_);
      if (retired_.empty() || retired_.front().upto > taken) return;
      auto it = std::find_if(retired_.begin(), retired_.end(),
                             [&](const retirement& r) { return r.upto > taken; });
      done.assign(std::make_move_iterator(retired_.begin()), std::make_move_iterator(it));
      retired_.erase(retired_.begin(), it);
    }
  }

  /// Owner side, under mu_: parks dropped payloads until the writer is past the next op.
  void retire(std::vector<shared_bytes>&& payloads) {
    if (!payloads.empty()) retired_.push_back(retirement{submitted_ + 1, std::move(payloads)});
  }

  bool sync_busy() {
    std::lock_guard lk(mu_);
    return sync_pending_;
  }

  /// Everything up to op number `taken` is written: it is complete when the group being
  /// synced (if any) is durable.
  void complete_when_synced(std::uint64_t taken) {
    {
      std::lock_guard lk(mu_);
      if (sync_pending_) {  // the pending group is the last one written: it completes `taken`
        sync_req_.taken = taken;
        return;
      }
    }
    publish(written_last_, taken);
  }

  void record_sync_latency(std::chrono::steady_clock::duration d) noexcept {
    const auto ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    sync_calls_.fetch_add(1, std::memory_order_relaxed);
    sync_total_ns_.fetch_add(ns, std::memory_order_relaxed);
    std::uint64_t prev = sync_max_ns_.load(std::memory_order_relaxed);
    while (ns > prev && !sync_max_ns_.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
    }
  }

  /// The sync thread: one fdatasync per group handed over by flush_group, then publish.
  void run_syncer() {
    std::unique_lock lk(mu_);
    for (;;) {
      sync_cv_.wait(lk, [&] { return sync_pending_ || sync_stop_; });
      if (!sync_pending_) return;
      const sync_request req = sync_req_;
      lk.unlock();
      const auto sync_start = std::chrono::steady_clock::now();
      int r = fs_.fdatasync(req.fd);
      record_sync_latency(std::chrono::steady_clock::now() - sync_start);
      if (r < 0) {
        fail(detail::failure{detail::errno_code(r), "fdatasync " + path(detail::segment_name(req.segment)) +
                                                        ": " + std::generic_category().message(-r)});
      } else {
        syncs_.fetch_add(1, std::memory_order_relaxed);
        publish(req.last, 0);  // the handler runs before the next group can be synced
      }
      lk.lock();
      // the writer may have attached a later completion while this group was syncing
      if (r >= 0 && !failed_) completed_ = std::max(completed_, sync_req_.taken);
      sync_pending_ = false;
      if (r < 0) sync_failed_ = true;
      lk.unlock();
      done_cv_.notify_all();
      work_cv_.notify_one();
      lk.lock();
    }
  }

  /// Waits until the group handed to the sync thread is durable; throws if its sync failed.
  void wait_sync() {
    std::unique_lock lk(mu_);
    work_cv_.wait(lk, [&] { return !sync_pending_; });
    if (sync_failed_) throw detail::failure{errc::io_error, "an earlier fdatasync failed"};
  }

  void apply(const op& o) {
    switch (o.kind) {
      case op_kind::append: add_record(o); break;
      case op_kind::truncate: do_truncate(o.index, o.term); break;
      case op_kind::compact: do_compact(o.index); break;
      case op_kind::reset: do_reset(o.index, o.term); break;
    }
  }

  void add_record(const op& o) {
    const std::size_t rs = detail::record_size(o.len);
    if (cur_fd_ < 0) open_segment(buf_last_ + 1, rs, last_term_);
    if (cur_off_ + buf_len_ + rs + detail::record_header_size > cur_cap_) {
      // no room for this record and a seal: seal this segment and roll
      encode_seal(buf_last_);
      flush_group();
      wait_sync();  // the next segment is written only once this one is durable
      fs_.close(cur_fd_);
      cur_fd_ = -1;
      open_segment(buf_last_ + 1, rs, last_term_);
    }
    encode(o.term, o.index, o.type, {o.data, o.len});
    buf_last_ = o.index;
    last_term_ = o.term;
    if (buf_len_ >= part_bytes()) {
      if (!sync_busy() || group_bytes_ + buf_len_ >= opts_.max_batch_bytes)
        flush_group();  // closes the group (after waiting for the disk if it is full)
      else
        write_partial();
    }
  }

  /// While the previous group is being synced: writes the open group's records but the last
  /// (which mark_group_end will still change) so the buffer stays small and the final
  /// write short. Records of this group may now reach the disk before the previous group
  /// is durable; the group's last record will say so (flag_after_unsynced).
  void write_partial() {
    if (last_rec_ == 0) return;
    const auto h = detail::record_header::decode(buf_.data() + last_rec_);
    if (long long w = fs_.pwrite(cur_fd_, buf_.data(), last_rec_, cur_off_); w < 0)
      throw_io(static_cast<int>(w), "write " + path(detail::segment_name(segs_.back().id)));
    cur_off_ += last_rec_;
    group_bytes_ += last_rec_;
    group_partial_ = true;
    written_last_ = h.index - 1;  // records in the buffer are contiguous entries
    std::memmove(buf_.data(), buf_.data() + last_rec_, buf_len_ - last_rec_);
    buf_len_ -= last_rec_;
    last_rec_ = 0;
  }

  void encode(term_t term, index_t index, std::uint8_t type, std::span<const std::byte> payload) {
    const std::size_t rs = detail::record_size(payload.size());
    if (buf_.size() < buf_len_ + rs)  // grows rarely: it starts at max_batch_bytes + 64 KiB
      buf_.resize(std::max({buf_len_ + rs, 2 * buf_.size(), opts_.max_batch_bytes + (64u << 10)}));
    detail::encode_record(buf_.data() + buf_len_, term, index, type, next_seq_, payload);
    last_rec_ = buf_len_;
    buf_len_ += rs;
  }

  /// A seal (term 0) closes the current segment at index `last`.
  void encode_seal(index_t last) { encode(0, last, detail::seal_type, {}); }

  /// Writes the buffered records with one call once the previous group is durable, and
  /// hands their fdatasync to the sync thread; it completes the ops up to buf_taken_.
  void flush_group() {
    if (buf_len_ == 0) return;
    detail::mark_group_end(buf_.data() + last_rec_,
                           group_partial_ ? detail::flag_group_end | detail::flag_after_unsynced
                                          : detail::flag_group_end);
    wait_sync();
    if (long long w = fs_.pwrite(cur_fd_, buf_.data(), buf_len_, cur_off_); w < 0)
      throw_io(static_cast<int>(w), "write " + path(detail::segment_name(segs_.back().id)));
    cur_off_ += buf_len_;
    buf_len_ = 0;
    group_bytes_ = 0;
    group_partial_ = false;
    ++next_seq_;
    written_last_ = buf_last_;
    {
      std::lock_guard lk(mu_);
      sync_req_ = sync_request{cur_fd_, segs_.back().id, written_last_, buf_taken_};
      sync_pending_ = true;
    }
    sync_cv_.notify_one();
  }

  /// Creates a segment starting at `first` (entry first - 1 has term `prev_term`), big
  /// enough for a record of `need` bytes; durable (header, name) when it returns.
  void open_segment(index_t first, std::size_t need, term_t prev_term, std::uint32_t flags = 0) {
    const std::uint64_t id = next_id_++;
    const std::string name = detail::segment_name(id);
    const std::string tmp = path(name + ".tmp"), dst = path(name);
    const std::uint64_t cap = std::max<std::uint64_t>(
        opts_.segment_size, detail::segment_header_size + need + 2 * detail::record_header_size);
    std::byte h[detail::segment_header_size];
    detail::segment_header{first, id, prev_term, flags}.encode(h);
    int fd = fs_.open(tmp, true);
    if (fd < 0) throw_io(fd, "create " + tmp);
    auto check = [&](long long r, const char* what) {
      if (r < 0) {
        fs_.close(fd);
        throw_io(static_cast<int>(r), std::string(what) + " " + tmp);
      }
    };
    check(fs_.allocate(fd, cap), "preallocate");
    check(fs_.pwrite(fd, h, sizeof h, 0), "write");
    check(fs_.fsync(fd), "fsync");
    check(fs_.rename(tmp, dst), "rename");
    check(fs_.sync_dir(dir_), "fsync directory of");
    segs_.push_back(segment{id, first});
    cur_fd_ = fd;
    cur_off_ = detail::segment_header_size;
    cur_cap_ = cap;
  }

  /// Removes a segment file, durably: removals are synced one by one so that a crash
  /// never leaves a later segment without an earlier one (a gap recovery would refuse).
  void remove_segment(std::uint64_t id) {
    const std::string p = path(detail::segment_name(id));
    if (int r = fs_.unlink(p); r < 0) throw_io(r, "unlink " + p);
    if (int r = fs_.sync_dir(dir_); r < 0) throw_io(r, "fsync " + dir_);
  }

  void do_truncate(index_t t, term_t term) {
    if (t >= buf_last_) return truncation_done();
    if (t >= written_last_) {  // only buffered records go: cut the buffer at the first > t
      std::size_t off = 0, last = 0;
      while (off < buf_len_) {
        const auto h = detail::record_header::decode(buf_.data() + off);
        if (h.index > t) break;
        last = off;
        off += detail::record_size(h.len);
      }
      // A partly written group needs a buffered record to end it; without one, the
      // general path below ends it with a seal.
      if (off > 0 || !group_partial_) {
        buf_len_ = off;
        last_rec_ = last;
        buf_last_ = t;
        last_term_ = term;
        return truncation_done();
      }
    }
    buf_len_ = 0;
    buf_last_ = written_last_;
    wait_sync();
    // delete whole segments past t, newest first, so a crash leaves a consistent prefix
    while (!segs_.empty() && segs_.back().first > t) {
      if (cur_fd_ >= 0) {
        fs_.close(cur_fd_);
        cur_fd_ = -1;
      }
      remove_segment(segs_.back().id);
      segs_.pop_back();
      group_bytes_ = 0;  // a partly written group went with its segment
      group_partial_ = false;
    }
    if (cur_fd_ >= 0) {  // the newest segment holds t: seal it, entries past t stay behind
      encode_seal(written_last_);
      flush_group();
      wait_sync();
      fs_.close(cur_fd_);
      cur_fd_ = -1;
    }
    // a segment starting at t + 1 voids everything after t in the segments before it
    open_segment(t + 1, 0, term);
    written_last_ = buf_last_ = t;
    last_term_ = term;
    truncation_done();
  }

  /// The log restarts after (i, t): unwritten records are dropped, a reset segment starting
  /// at i + 1 is made durable (from then on recovery ignores every older segment), then the
  /// older segments are deleted.
  void do_reset(index_t i, term_t t) {
    buf_len_ = 0;
    last_rec_ = 0;
    wait_sync();
    if (cur_fd_ >= 0) {
      fs_.close(cur_fd_);
      cur_fd_ = -1;
    }
    group_bytes_ = 0;  // a partly written group is void with its segment
    group_partial_ = false;
    std::vector<segment> old;
    old.swap(segs_);
    open_segment(i + 1, 0, t, detail::segment_flag_reset);
    for (const segment& sg : old) remove_segment(sg.id);
    written_last_ = buf_last_ = i;
    last_term_ = t;
    truncation_done();
  }

  /// Once every truncation issued has reached the disk, durability needs no cap.
  void truncation_done() {
    std::lock_guard lk(mu_);
    if (++trunc_done_ == trunc_issued_) floor_ = std::numeric_limits<index_t>::max();
  }

  /// Deletes the segments holding only entries below `i`, oldest first, so a crash at any
  /// moment leaves a contiguous suffix of segments whose oldest header names the term
  /// before it.
  void do_compact(index_t i) {
    while (segs_.size() >= 2 && segs_[1].first <= i) {
      remove_segment(segs_.front().id);
      segs_.erase(segs_.begin());
    }
  }

  /// Reports entries up to `last` durable, capped by truncations not yet on disk.
  void publish(index_t last, std::uint64_t taken) {
    index_t before, now;
    {
      std::lock_guard lk(mu_);
      if (failed_) return;
      before = durable_.load(std::memory_order_relaxed);
      now = std::min(last, floor_);
      durable_.store(now, std::memory_order_release);
      if (taken) completed_ = std::max(completed_, taken);
    }
    if (now > before) {  // the handler runs before waiters are woken
      std::lock_guard lk(handler_mu_);
      if (handler_) handler_(now);
    }
    done_cv_.notify_all();
  }

  bool failed() const {
    std::lock_guard lk(mu_);
    return failed_;
  }

  void fail(const detail::failure& f) {
    {
      std::lock_guard lk(mu_);
      if (!failed_) {
        failed_ = true;
        error_ = make_error_code(f.code);
        error_what_ = f.what;
      }
      ops_.clear();
    }
    done_cv_.notify_all();
    work_cv_.notify_one();
  }

  // owner thread
  FS fs_;
  std::string dir_;
  options opts_;
  std::deque<entry> entries_;
  index_t first_ = 1;
  term_t base_term_ = 0;  // term of entry first_ - 1
  hard_state hard_;
  recovery_report report_;
  int lock_fd_ = -1;

  // shared, under mu_
  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_, sync_cv_;  // writer, waiters, sync thread
  std::vector<op> ops_;
  std::size_t ops_bytes_ = 0;  // record bytes in ops_
  bool writer_idle_ = false;   // the writer waits in run() for writer_has_work()
  std::vector<retirement> retired_;
  std::uint64_t submitted_ = 0, completed_ = 0;
  index_t floor_ = std::numeric_limits<index_t>::max();  // min truncation not yet on disk
  std::uint64_t trunc_issued_ = 0, trunc_done_ = 0;
  bool stop_ = false, failed_ = false;
  std::error_code error_;
  std::string error_what_;
  std::atomic<index_t> durable_{0};
  std::atomic<std::uint64_t> syncs_{0};
  std::atomic<std::uint64_t> sync_calls_{0};     // fdatasync calls, failed ones included
  std::atomic<std::uint64_t> sync_total_ns_{0};
  std::atomic<std::uint64_t> sync_max_ns_{0};
  std::mutex handler_mu_;
  std::function<void(index_t)> handler_;

  // writer thread (set up by the constructor before it starts)
  std::vector<segment> segs_;
  int cur_fd_ = -1;
  std::uint64_t cur_off_ = 0, cur_cap_ = 0;
  std::vector<std::byte> buf_;  // records of the group being gathered: the first buf_len_ bytes
  std::size_t buf_len_ = 0;
  std::size_t last_rec_ = 0;    // offset of the last record in buf_
  std::size_t group_bytes_ = 0;  // bytes of the open group already written (write_partial)
  bool group_partial_ = false;   // the open group has been partly written
  std::uint64_t buf_taken_ = 0;  // ops up to this number are encoded (or written)
  index_t written_last_ = 0, buf_last_ = 0;
  term_t last_term_ = 0;  // term of entry buf_last_
  std::uint64_t next_seq_ = 1, next_id_ = 1;

  // hand-over between writer and sync thread, under mu_
  struct sync_request {
    int fd;
    std::uint64_t segment;
    index_t last;
    std::uint64_t taken;
  };
  sync_request sync_req_{};
  bool sync_pending_ = false, sync_failed_ = false, sync_stop_ = false;

  std::thread syncer_, writer_;
};

/// The file log store over real POSIX files.
using log_store = basic_log_store<>;

}  // namespace raftkit::file

static_assert(raftkit::log_store<raftkit::file::log_store>);
static_assert(raftkit::detail::failable_store<raftkit::file::log_store>);
static_assert(raftkit::detail::compactable_store<raftkit::file::log_store>);
