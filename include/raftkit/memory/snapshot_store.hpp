#pragma once
/// \file memory::snapshot_store: snapshots kept in memory, for tests and the simulator.
///
/// Copies are handles to one store, so a simulator keeps the "disk" while the node that used
/// it is destroyed and rebuilt. A commit is durable at once; `crash()` loses every sink not
/// yet committed, as a power loss loses a snapshot whose file was never renamed into place.
/// The store keeps the last 2 snapshots; a source holds its content, so it stays readable
/// after the store dropped it. Thread-safe as the snapshot_store concept asks.

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/errc.hpp"
#include "raftkit/snapshot_store.hpp"

namespace raftkit::memory {

/// An in-memory snapshot store (see the file comment).
class snapshot_store {
  using content_ptr = std::shared_ptr<const std::vector<std::byte>>;
  struct stored {
    snapshot_meta meta;
    content_ptr content;
  };
  struct state {
    mutable std::mutex mu;
    std::vector<stored> kept;  // oldest first, at most `kept_count`
    std::uint64_t crashes = 0;
    std::error_code injected;
  };
  static std::optional<snapshot_meta> newest(const state& st) {  // with st.mu held
    if (st.kept.empty()) return std::nullopt;
    return st.kept.back().meta;
  }

 public:
  /// How many committed snapshots the store keeps.
  static constexpr std::size_t kept_count = 2;

  /// Where a sink keeps its bytes until commit.
  class sink_backend {
   public:
    std::error_code append(std::span<const std::byte> b) {
      if (auto e = injected()) return e;
      bytes_.insert(bytes_.end(), b.begin(), b.end());
      return {};
    }
    /// Fails with io_error if the store crashed since the sink was made (its writer died).
    std::error_code publish(snapshot_meta m) {
      auto content = std::make_shared<const std::vector<std::byte>>(std::move(bytes_));
      std::lock_guard lk(st_->mu);
      if (st_->crashes != crashes_) return errc::io_error;
      if (st_->injected) return st_->injected;
      if (auto e = raftkit::detail::not_newer(newest(*st_), m.index)) return e;
      st_->kept.push_back({std::move(m), std::move(content)});
      if (st_->kept.size() > kept_count) st_->kept.erase(st_->kept.begin());
      return {};
    }
    void discard() noexcept { bytes_ = {}; }

   private:
    friend class snapshot_store;
    sink_backend(std::shared_ptr<state> st, std::uint64_t crashes) : st_(std::move(st)), crashes_(crashes) {}
    std::error_code injected() const {
      std::lock_guard lk(st_->mu);
      return st_->injected;
    }
    std::shared_ptr<state> st_;
    std::uint64_t crashes_;
    std::vector<std::byte> bytes_;
  };
  /// Reads the content a source shares with the store.
  struct source_reader {
    content_ptr content;
    std::error_code read(std::uint64_t off, std::span<std::byte> out) const noexcept {
      std::memcpy(out.data(), content->data() + off, out.size());
      return {};
    }
  };

  /// Writes one snapshot into memory; committed, it becomes the store's newest.
  using sink = raftkit::detail::basic_snapshot_sink<sink_backend>;
  /// Reads a committed snapshot; holds its content, so it outlives the store's copy.
  using source = raftkit::detail::basic_snapshot_source<source_reader>;

  snapshot_store() : s_(std::make_shared<state>()) {}

  /// The newest committed snapshot, or nullopt.
  std::optional<snapshot_meta> latest() const {
    std::lock_guard lk(s_->mu);
    return newest(*s_);
  }
  /// Begins a snapshot of the log up to (i, t) with configuration `cfg`.
  sink create(index_t i, term_t t, std::vector<std::byte> cfg) {
    std::lock_guard lk(s_->mu);
    return sink(sink_backend(s_, s_->crashes), i, t, std::move(cfg), raftkit::detail::not_newer(newest(*s_), i));
  }
  /// Opens snapshot `m`; error() is `errc::stale_snapshot` if the store no longer keeps it.
  source open(const snapshot_meta& m) const {
    std::lock_guard lk(s_->mu);
    for (const stored& k : s_->kept)
      if (k.meta == m) return source(k.meta, {k.content});
    return source(m, {}, errc::stale_snapshot);
  }

  /// Loses every sink not yet committed (their commit fails with io_error), as a power
  /// loss would; committed snapshots survive.
  void crash() {
    std::lock_guard lk(s_->mu);
    ++s_->crashes;
  }
  /// Makes every later write and commit fail with `ec` (e.g. errc::no_space), until called
  /// with an empty error_code: a full or failing disk for engine tests.
  void inject_error(std::error_code ec) {
    std::lock_guard lk(s_->mu);
    s_->injected = ec;
  }
  /// Snapshots kept, oldest first (for tests and the simulator's checks).
  std::vector<snapshot_meta> kept() const {
    std::lock_guard lk(s_->mu);
    std::vector<snapshot_meta> v;
    for (const stored& k : s_->kept) v.push_back(k.meta);
    return v;
  }

 private:
  std::shared_ptr<state> s_;
};

static_assert(raftkit::snapshot_store<snapshot_store>);
static_assert(raftkit::snapshot_sink<snapshot_store::sink>);
static_assert(raftkit::snapshot_source<snapshot_store::source>);

}  // namespace raftkit::memory
