#pragma once
/// \file Tuning and statistics of raftkit::file::log_store.

#include <array>
#include <cstddef>
#include <cstdint>

namespace raftkit::file {

/// Tuning of a file log store.
struct options {
  /// Size a segment is preallocated to; the log rolls to a new segment when full.
  std::uint64_t segment_size = 64u << 20;
  /// Bytes the writer gathers at most before one write + fdatasync.
  std::size_t max_batch_bytes = 8u << 20;
  /// Memory for the newest entries: their payloads plus `sizeof(entry)` each. Older entries
  /// are read back from the segment files. Entries not yet durable are always kept (they
  /// cannot be read back yet), so the cache exceeds this while the disk lags behind.
  std::size_t max_cached_bytes = 64u << 20;
  /// Bytes read at once when entries are read back (a follower catching up reads on).
  std::size_t read_ahead_bytes = 256u << 10;
  /// Whether opening creates missing parent directories of the store's directory (as
  /// `mkdir -p`). Each directory created is synced into its parent.
  bool create_parents = true;
};

/// fdatasync latency of a store: calls, their total and their longest duration, and how
/// many fell in each latency bucket (for a histogram).
struct sync_stats {
  /// Upper bounds of the latency buckets, nanoseconds: 50 µs to 2.5 s.
  static constexpr std::array<std::uint64_t, 15> bucket_bounds_ns{
      50'000,     100'000,    250'000,     500'000,     1'000'000,   2'500'000,   5'000'000,    10'000'000,
      25'000'000, 50'000'000, 100'000'000, 250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000};
  std::uint64_t count = 0;
  std::uint64_t total_ns = 0;
  std::uint64_t max_ns = 0;
  /// Calls per bucket, not cumulative: `buckets[i]` took at most `bucket_bounds_ns[i]` (and
  /// more than the bound before); the last, longer than every bound.
  std::array<std::uint64_t, bucket_bounds_ns.size() + 1> buckets{};
};

/// Memory a store holds for its log, in bytes (owner thread).
struct memory_stats {
  std::size_t cached_entries = 0;  ///< entries whose payload is held in memory
  std::size_t cached_bytes = 0;    ///< their payloads plus sizeof(entry) each
  std::size_t index_bytes = 0;     ///< per-entry metadata of every entry held (see entry_index)
  std::size_t read_buffer_bytes = 0;  ///< buffers of entries read back
};

}  // namespace raftkit::file
