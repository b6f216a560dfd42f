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
/// `latest()->index` fails with `errc::stale_snapshot` and changes nothing. (Only opening a
/// durable store can go back: if it finds its newest snapshot corrupt, it falls back to the
/// previous one and reports the file it refused.) A store keeps
/// the newest few snapshots (the supplied ones keep 2); a source opened on an older one stays
/// readable even when the store deletes it.
///
/// ## Errors
/// Sinks and sources report errors as `std::error_code` values (raftkit::errc) and never
/// throw after the store is open, except for misuse (a write after commit), which stops the
/// program through RAFTKIT_ASSERT. A sink's error is sticky: once a write fails, every later
/// write and the commit return that error, and the snapshot is discarded.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/detail/crc32c.hpp"
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
  /// it, the source's error() is `errc::stale_snapshot`. The source stays readable even if
  /// newer snapshots later make the store delete this one.
  { s.open(m) } -> snapshot_source;
};

namespace detail {

/// `errc::stale_snapshot` when a snapshot at index `i` would not be newer than `latest`.
inline std::error_code not_newer(const std::optional<snapshot_meta>& latest, index_t i) noexcept {
  return latest && i <= latest->index ? std::error_code(errc::stale_snapshot) : std::error_code();
}

/// A flag a move leaves set in its source: a moved-from sink is finished.
class finished_flag {
 public:
  explicit finished_flag(bool v = true) noexcept : v_(v) {}
  finished_flag(finished_flag&& o) noexcept : v_(std::exchange(o.v_, true)) {}
  finished_flag& operator=(finished_flag&& o) noexcept {
    v_ = std::exchange(o.v_, true);
    return *this;
  }
  finished_flag& operator=(bool v) noexcept {
    v_ = v;
    return *this;
  }
  explicit operator bool() const noexcept { return v_; }

 private:
  bool v_;
};

/// The part of a snapshot sink every supplied store shares: the meta it builds (size and CRC
/// grow with each write), the sticky error, the end of its life (commit or abort, at most
/// once), misuse checks. `Backend` keeps the bytes:
///   `std::error_code append(std::span<const std::byte>)`: keep these bytes next;
///   `std::error_code publish(snapshot_meta)`: make the snapshot durable and the newest, or
///   fail (with `errc::stale_snapshot` when it is not newer: see not_newer);
///   `void discard() noexcept`: drop what was kept (idempotent).
/// A moved-from sink is finished, so its backend is never touched again.
template <class Backend>
class basic_snapshot_sink {
 public:
  /// A sink for (i, t, cfg) writing through `be`; `ec` (if set) is its error from the start.
  basic_snapshot_sink(Backend be, index_t i, term_t t, std::vector<std::byte> cfg, std::error_code ec = {})
      : be_(std::move(be)), ec_(ec), done_(false) {
    meta_.index = i;
    meta_.term = t;
    meta_.config = std::move(cfg);
  }
  basic_snapshot_sink(basic_snapshot_sink&&) noexcept = default;
  basic_snapshot_sink& operator=(basic_snapshot_sink&& o) noexcept {
    if (this != &o) {
      abort();
      be_ = std::move(o.be_);
      meta_ = std::move(o.meta_);
      ec_ = o.ec_;
      done_ = std::move(o.done_);
    }
    return *this;
  }
  ~basic_snapshot_sink() { abort(); }

  /// Appends `b` (see raftkit::snapshot_sink).
  std::error_code write(std::span<const std::byte> b) {
    RAFTKIT_ASSERT(!done_, "write on a committed or aborted snapshot sink");
    if (ec_ || b.empty()) return ec_;
    if (auto e = be_.append(b)) return fail(e);
    meta_.size += b.size();
    meta_.crc = crc32c_extend(meta_.crc, b.data(), b.size());
    return {};
  }
  /// Bytes accepted so far.
  std::uint64_t written() const noexcept { return meta_.size; }
  /// CRC-32C of the bytes accepted so far.
  std::uint32_t crc() const noexcept { return meta_.crc; }
  /// Makes the snapshot durable and the newest, or fails and discards it.
  std::error_code commit() {
    RAFTKIT_ASSERT(!done_, "commit on a committed or aborted snapshot sink");
    done_ = true;
    if (!ec_) ec_ = be_.publish(std::move(meta_));  // moves only the config: size and crc stay
    if (ec_) be_.discard();
    return ec_;
  }
  /// Discards the snapshot; idempotent.
  void abort() noexcept {
    if (done_) return;
    done_ = true;
    be_.discard();
  }

 private:
  std::error_code fail(std::error_code e) {
    be_.discard();
    return ec_ = e;
  }

  Backend be_;
  snapshot_meta meta_;
  std::error_code ec_;
  finished_flag done_;
};

/// The part of a snapshot source every supplied store shares: its meta, the clamp to the
/// content's end, the sticky error. `Reader` has `std::error_code read(std::uint64_t off,
/// std::span<std::byte> out)`, which fills all of `out` (inside the content) or fails.
template <class Reader>
class basic_snapshot_source {
 public:
  basic_snapshot_source(snapshot_meta m, Reader r, std::error_code ec = {})
      : meta_(std::move(m)), r_(std::move(r)), ec_(ec) {}
  /// The snapshot being read.
  const snapshot_meta& meta() const noexcept { return meta_; }
  /// Copies content from `off` into `out`: short only at the end, 0 on an error.
  std::size_t read_at(std::uint64_t off, std::span<std::byte> out) {
    if (ec_ || off >= meta_.size || out.empty()) return 0;
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), meta_.size - off));
    if (auto e = r_.read(off, out.first(n))) {
      ec_ = e;
      return 0;
    }
    return n;
  }
  /// The first error met.
  std::error_code error() const noexcept { return ec_; }

 private:
  snapshot_meta meta_;
  Reader r_;
  std::error_code ec_;
};

}  // namespace detail

}  // namespace raftkit
