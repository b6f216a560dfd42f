#pragma once
/// \file memory::snapshot_store: snapshots kept in memory, for tests and the simulator.
///
/// Copies are handles to one store, so a simulator keeps the "disk" while the node that used
/// it is destroyed and rebuilt. A commit is durable at once; `crash()` loses every sink not
/// yet committed, as a power loss loses a snapshot whose file was never renamed into place.
/// The store keeps the last 2 snapshots; a source holds its content, so it stays readable
/// after the store dropped it. Thread-safe as the snapshot_store concept asks.

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/detail/crc32c.hpp"
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

 public:
  /// How many committed snapshots the store keeps.
  static constexpr std::size_t kept_count = 2;

  /// Writes one snapshot into memory; committed, it becomes the store's newest.
  class sink {
   public:
    sink(sink&& o) noexcept { *this = std::move(o); }
    sink& operator=(sink&& o) noexcept {
      if (this != &o) {
        abort();
        st_ = std::move(o.st_);
        crashes_ = o.crashes_;
        meta_ = std::move(o.meta_);
        bytes_ = std::move(o.bytes_);
        ec_ = o.ec_;
        done_ = std::exchange(o.done_, true);
      }
      return *this;
    }
    sink(const sink&) = delete;
    sink& operator=(const sink&) = delete;
    ~sink() { abort(); }

    /// Appends `b` (see raftkit::snapshot_sink); fails with the store's injected error.
    std::error_code write(std::span<const std::byte> b) {
      RAFTKIT_ASSERT(!done_, "write on a committed or aborted snapshot sink");
      if (ec_) return ec_;
      if (auto e = injected()) return fail(e);
      bytes_.insert(bytes_.end(), b.begin(), b.end());
      meta_.crc = detail::crc32c_extend(meta_.crc, b.data(), b.size());
      return {};
    }
    std::uint64_t written() const noexcept { return bytes_.size(); }
    std::uint32_t crc() const noexcept { return meta_.crc; }

    /// Makes the snapshot the newest; fails with `snapshot_errc::stale` if one at the same or
    /// a higher index is committed, with `io_error` if the store crashed since `create`.
    std::error_code commit() {
      RAFTKIT_ASSERT(!done_, "commit on a committed or aborted snapshot sink");
      done_ = true;
      if (ec_) return ec_;
      meta_.size = bytes_.size();
      auto content = std::make_shared<const std::vector<std::byte>>(std::move(bytes_));
      std::lock_guard lk(st_->mu);
      if (st_->crashes != crashes_) return ec_ = errc::io_error;  // its writer died in the crash
      if (st_->injected) return ec_ = st_->injected;
      if (!st_->kept.empty() && meta_.index <= st_->kept.back().meta.index)
        return ec_ = snapshot_errc::stale;
      st_->kept.push_back({std::move(meta_), std::move(content)});
      if (st_->kept.size() > kept_count) st_->kept.erase(st_->kept.begin());
      return {};
    }
    /// Discards the snapshot.
    void abort() noexcept {
      done_ = true;
      bytes_ = {};
    }

   private:
    friend class snapshot_store;
    sink(std::shared_ptr<state> st, index_t i, term_t t, std::vector<std::byte> cfg)
        : st_(std::move(st)), done_(false) {
      meta_.index = i;
      meta_.term = t;
      meta_.config = std::move(cfg);
      std::lock_guard lk(st_->mu);
      crashes_ = st_->crashes;
      if (!st_->kept.empty() && i <= st_->kept.back().meta.index) ec_ = snapshot_errc::stale;
    }
    std::error_code injected() const {
      std::lock_guard lk(st_->mu);
      return st_->injected;
    }
    std::error_code fail(std::error_code e) {
      bytes_ = {};
      return ec_ = e;
    }

    std::shared_ptr<state> st_;
    std::uint64_t crashes_ = 0;
    snapshot_meta meta_;
    std::vector<std::byte> bytes_;
    std::error_code ec_;
    bool done_ = true;  // a moved-from sink is done
  };

  /// Reads a committed snapshot; holds its content, so it outlives the store's copy.
  class source {
   public:
    const snapshot_meta& meta() const noexcept { return meta_; }
    std::size_t read_at(std::uint64_t off, std::span<std::byte> out) {
      if (ec_ || !content_ || off >= content_->size()) return 0;
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(out.size(), content_->size() - off));
      if (n) std::memcpy(out.data(), content_->data() + off, n);
      return n;
    }
    std::error_code error() const noexcept { return ec_; }

   private:
    friend class snapshot_store;
    source(snapshot_meta m, content_ptr c, std::error_code ec)
        : meta_(std::move(m)), content_(std::move(c)), ec_(ec) {}
    snapshot_meta meta_;
    content_ptr content_;
    std::error_code ec_;
  };

  snapshot_store() : s_(std::make_shared<state>()) {}

  /// The newest committed snapshot, or nullopt.
  std::optional<snapshot_meta> latest() const {
    std::lock_guard lk(s_->mu);
    if (s_->kept.empty()) return std::nullopt;
    return s_->kept.back().meta;
  }
  /// Begins a snapshot of the log up to (i, t) with configuration `cfg`.
  sink create(index_t i, term_t t, std::vector<std::byte> cfg) { return sink(s_, i, t, std::move(cfg)); }
  /// Opens snapshot `m`; error() is `snapshot_errc::stale` if the store no longer keeps it.
  source open(const snapshot_meta& m) const {
    std::lock_guard lk(s_->mu);
    for (const stored& k : s_->kept)
      if (k.meta == m) return source(k.meta, k.content, {});
    return source(m, nullptr, snapshot_errc::stale);
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
