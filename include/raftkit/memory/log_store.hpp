#pragma once
/// \file memory::log_store: an in-memory log with a durable and an unsynced part.
///
/// Appends become durable after a configurable write delay (or at once); `crash()`
/// drops whatever is not yet durable, exactly as a machine losing power loses what it
/// had not fsynced. Copies are handles to one store, so a simulator keeps the "disk"
/// while the node that used it is destroyed and rebuilt.

#include <algorithm>
#include <memory>
#include <span>
#include <utility>

#include "raftkit/assert.hpp"
#include "raftkit/detail/ring.hpp"
#include "raftkit/log_store.hpp"

namespace raftkit::memory {

/// Tunables of the in-memory store.
struct log_store_options {
  /// How long an append takes to become durable; 0 makes appends durable at once.
  duration write_delay{0};
};

/// An in-memory log store (see file comment).
class log_store {
 public:
  explicit log_store(log_store_options opts = {}) : s_(std::make_shared<state>()) {
    s_->opts = opts;
  }

  index_t first_index() const noexcept { return s_->first; }
  index_t last_index() const noexcept { return s_->first + s_->entries.size() - 1; }
  term_t term_at(index_t i) const noexcept {
    if (i == s_->first - 1) return s_->base_term;
    if (i < s_->first || i > last_index()) return 0;
    return s_->entries[i - s_->first].term;
  }
  const entry& at(index_t i) const {
    RAFTKIT_ASSERT(i >= s_->first && i <= last_index(), "log index out of range");
    return s_->entries[i - s_->first];
  }
  index_t durable_index() const noexcept { return s_->durable; }

  void append(std::span<const entry> es) {
    for (const entry& e : es) {
      RAFTKIT_ASSERT(e.index == last_index() + 1, "append must continue the log");
      s_->entries.push_back(e);
    }
    if (es.empty()) return;
    s_->dirty_from = std::min(s_->dirty_from, es.front().index);
    ++s_->writes;
    if (s_->opts.write_delay.count() == 0) {
      s_->durable = last_index();
    } else {
      s_->pending.push_back({last_index(), s_->now + s_->opts.write_delay});
    }
  }

  /// Removes entries after `i`. Modelled as durable at once: a crash can never bring
  /// back an entry the node was told is gone, and nothing after `i` stays durable.
  void truncate_after(index_t i) {
    RAFTKIT_ASSERT(i + 1 >= s_->first, "cannot truncate into the compacted prefix");
    s_->entries.truncate(static_cast<std::size_t>(i + 1 - s_->first));
    s_->dirty_from = std::min(s_->dirty_from, i + 1);
    s_->durable = std::min(s_->durable, i);
    while (!s_->pending.empty() && s_->pending.back().index > i) s_->pending.pop_back();
  }

  /// Drops entries below min(i, durable_index() + 1) (they are in a snapshot); any `i` is
  /// accepted (raftkit::log_store, "Compaction and reset"). Durable at once.
  void compact_before(index_t i) {
    i = std::min(i, s_->durable + 1);
    while (s_->first < i && !s_->entries.empty()) {
      s_->base_term = s_->entries.front().term;
      s_->entries.pop_front();
      ++s_->first;
    }
  }

  /// Drops the whole log: afterwards it is empty and continues after (i, t). Modelled as
  /// durable at once (a crash keeps the reset), like a truncation.
  void reset(index_t i, term_t t) {
    s_->entries.clear();
    s_->pending.clear();
    s_->dirty_from = std::min(s_->dirty_from, std::min(s_->first, i + 1));
    s_->first = i + 1;
    s_->base_term = t;
    s_->durable = i;
  }

  hard_state load_hard_state() const noexcept { return s_->hs; }
  void save_hard_state(const hard_state& hs) noexcept {
    s_->hs = hs;
    ++s_->hard_state_writes;
  }

  /// Completes every write whose delay has passed by `now`.
  void poll(time_point now) {
    s_->now = std::max(s_->now, now);
    while (!s_->pending.empty() && s_->pending.front().ready <= s_->now) {
      s_->durable = std::max(s_->durable, s_->pending.pop_front().index);
    }
  }
  /// Makes everything appended so far durable (an fsync that completes now).
  void sync() {
    s_->pending.clear();
    s_->durable = last_index();
  }
  /// Loses every write not yet durable, as a power loss would.
  void crash() {
    s_->pending.clear();
    s_->entries.truncate(static_cast<std::size_t>(s_->durable + 1 - s_->first));
    s_->dirty_from = std::min(s_->dirty_from, s_->durable + 1);
  }
  /// The lowest index appended, truncated or lost since the last call (so a checker
  /// re-examines only what changed); resets the mark.
  index_t take_changed_from() noexcept {
    return std::exchange(s_->dirty_from, ~index_t{0});
  }
  /// When the next pending write completes, if any (for event-driven drivers).
  bool next_completion(time_point& t) const noexcept {
    if (s_->pending.empty()) return false;
    t = s_->pending.front().ready;
    return true;
  }
  /// Changes the latency of later writes (a disk that becomes slow).
  void set_write_delay(duration d) noexcept { s_->opts.write_delay = d; }
  /// Number of append calls and hard-state writes so far (for tests and benchmarks).
  std::size_t write_count() const noexcept { return s_->writes; }
  std::size_t hard_state_write_count() const noexcept { return s_->hard_state_writes; }

 private:
  struct pending_write {
    index_t index = 0;
    time_point ready{};
  };
  struct state {
    log_store_options opts;
    detail::ring<entry> entries;
    index_t first = 1;
    term_t base_term = 0;
    index_t durable = 0;
    hard_state hs;
    time_point now{};
    detail::ring<pending_write> pending;
    std::size_t writes = 0;
    std::size_t hard_state_writes = 0;
    index_t dirty_from = 1;
  };
  std::shared_ptr<state> s_;
};

static_assert(raftkit::log_store<log_store>);
static_assert(detail::pollable_store<log_store>);
static_assert(detail::compactable_store<log_store>);

}  // namespace raftkit::memory
