#pragma once
/// \file The snapshot store policy: where a node keeps its snapshots (Raft §7).
///
/// A snapshot is the state machine's state after applying the log up to `index`, plus the
/// cluster configuration at that index. The engine writes one through a *sink* (its own,
/// taken from the state machine, possibly on a worker thread; or one a leader streams to it
/// with InstallSnapshot), and reads one through a *source* (to send it to a follower in
/// chunks, or to restore the state machine at start-up).
///
/// ## Threads
/// `latest`, `create` and `open` may be called from different threads at once (the engine's
/// and a snapshot writer's); a store locks what it shares. A sink or a source object is
/// used by one thread at a time, and may be moved to another thread between uses. Sinks and
/// sources stay usable after the store object that made them is destroyed or moved.
///
/// ## Durability and order
/// `commit` returns success only once the snapshot is durable: a crash at any later moment
/// finds it. A crash before `commit` returns leaves the store as it was before `create` (the
/// previous snapshot) or, once commit has made it durable, with the new one: never a mix.
/// `latest()` never moves backwards: a commit of a snapshot whose index is not above
/// `latest()->index` fails with `snapshot_errc::stale` and changes nothing. A store keeps
/// the newest few snapshots (the supplied ones keep 2); a source opened on an older one stays
/// readable even when the store deletes it.
///
/// ## Errors
/// Sinks and sources report errors as `std::error_code` values (raftkit::errc) and never
/// throw after the store is open, except for misuse (a write after commit), which stops the
/// program through RAFTKIT_ASSERT. A sink's error is sticky: once a write fails, every later
/// write and the commit return that error, and the snapshot is discarded.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/errc.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// What a snapshot covers and how to check its content.
struct snapshot_meta {
  index_t index = 0;              ///< last log index the snapshot includes
  term_t term = 0;                ///< term of that entry
  std::vector<std::byte> config;  ///< the cluster configuration at `index`, encoded by the engine (opaque to stores)
  std::uint64_t size = 0;         ///< content bytes
  std::uint32_t crc = 0;          ///< CRC-32C of the content (raftkit/detail/crc32c.hpp)
  friend bool operator==(const snapshot_meta&, const snapshot_meta&) = default;
};

/// Snapshot store errors that raftkit::errc does not hold yet.
///
/// The value is reserved as `errc::stale_snapshot = 13` ("a newer snapshot is already
/// committed"); until errc.hpp lists it, its error_code prints as an unknown raftkit error.
/// Once it does, `snapshot_errc::stale` becomes an alias of `errc::stale_snapshot`.
struct snapshot_errc {
  /// A commit whose index is not above latest()'s, or an open of a snapshot the store no
  /// longer keeps: a newer snapshot replaced it. Nothing was changed.
  static constexpr errc stale = static_cast<errc>(13);
};

/// Receives a snapshot's bytes in order (from the state machine on a worker thread, or from
/// InstallSnapshot chunks on the engine's thread). One thread at a time uses a sink.
/// Destroying a sink that was not committed discards it, as `abort()` does.
template <class W>
concept snapshot_sink = std::movable<W> && requires(W& w, const W& cw, std::span<const std::byte> b) {
  /// Appends `b`. An error is sticky (every later write and commit return it). A write may
  /// only buffer the bytes: their I/O errors may show at a later write or at commit.
  { w.write(b) } -> std::same_as<std::error_code>;
  /// Bytes accepted so far.
  { cw.written() } -> std::same_as<std::uint64_t>;
  /// CRC-32C of the bytes accepted so far (what the snapshot's meta will carry).
  { cw.crc() } -> std::same_as<std::uint32_t>;
  /// Makes the snapshot durable and the newest (latest() returns it once this returns
  /// success). On failure the snapshot is discarded and the store is as it was: `stale`
  /// when a snapshot at the same or a higher index is already committed, `no_space`,
  /// `io_error`, or the sink's earlier error. Called at most once.
  { w.commit() } -> std::same_as<std::error_code>;
  /// Discards the snapshot (what the destructor does if it was not committed). Idempotent.
  { w.abort() } -> std::same_as<void>;
};

/// Reads a snapshot's content at any offset (the leader streams chunks and resumes from an
/// acknowledged offset; restore reads it from 0 in order). One thread at a time uses a
/// source; the content it reads never changes.
template <class R>
concept snapshot_source = std::movable<R> && requires(R& r, const R& cr, std::uint64_t off,
                                                      std::span<std::byte> out) {
  /// The snapshot being read.
  { cr.meta() } -> std::same_as<const snapshot_meta&>;
  /// Copies content bytes from `off` into `out`: the number copied, which is short only at
  /// the end (0 at or past it), and 0 on an error (then `error()` says which).
  { r.read_at(off, out) } -> std::same_as<std::size_t>;
  /// The first error met: set when the snapshot could not be opened or a read failed.
  { cr.error() } -> std::same_as<std::error_code>;
};

/// Where a node keeps its snapshots (see the file comment for threads and durability).
template <class S>
concept snapshot_store = requires(S& s, const S& cs, index_t i, term_t t, std::vector<std::byte> cfg,
                                  const snapshot_meta& m) {
  /// The newest committed (and, for a durable store, verified) snapshot, or nullopt.
  { cs.latest() } -> std::same_as<std::optional<snapshot_meta>>;
  /// Begins writing a new snapshot covering the log up to (i, t), with configuration `cfg`.
  /// Never fails by itself: a sink that cannot be made (no space, or `i` is already not
  /// above latest()) reports the error from its first write and its commit.
  { s.create(i, t, std::move(cfg)) } -> snapshot_sink;
  /// Opens snapshot `m` (one latest() returned) for reading. If the store no longer keeps
  /// it, the source's error() is `snapshot_errc::stale`. The source stays readable even if
  /// newer snapshots later make the store delete this one.
  { s.open(m) } -> snapshot_source;
};

}  // namespace raftkit
