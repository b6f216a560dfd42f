#pragma once
/// \file The log store policy: where a node keeps its log and its hard state.
///
/// ## Durability
/// Durability is asynchronous: `append` returns at once and `durable_index()` later
/// rises to cover what has reached stable storage. A node acknowledges and counts
/// toward a quorum only entries at or below `durable_index()` (Raft thesis §10.2.1).
/// The rules every store follows:
///  - `durable_index()` rises only for what is on stable storage: after a crash or a power
///    loss at any moment, the store reopens holding every entry that was at or below
///    `durable_index()` when it was last read (unless a later truncation removed it). A
///    store that reopens reports durable only what it has itself made durable (data read
///    back from a page cache is synced first).
///  - `durable_index()` drops on truncation: `truncate_after(i)` makes it at most `i` before
///    it returns, and it rises past `i` again only for entries appended after the
///    truncation once they (and the truncation) are on stable storage. So an acknowledgement
///    never covers an entry that has been removed.
///  - A truncation (and a `reset`) is ordered before every later append: a crash reopens
///    either the log before it or the log after it with a prefix of the later appends.
/// `save_hard_state` is synchronous: term and vote are durable when it returns, so a
/// node can grant a vote or speak in a new term right after.
///
/// ## Compaction and reset (`detail::compactable_store`; required only with snapshots)
///  - `term_at(first_index() - 1)` is the term of the entry just before the first one held:
///    the last compacted entry, or the snapshot's term after `reset`; 0 on a log never
///    compacted (index 0). It stays correct after a reopen or restart.
///  - `compact_before(i)` drops entries below `min(i, durable_index() + 1)`, for any `i`:
///    it is clamped, never an error, so it never drops an entry that is not yet durable.
///    A store may keep more than asked (a file store deletes whole segments only, so it may
///    reopen with an earlier first index); afterwards `first_index() <= max(i, first
///    index before)`. A crash at any moment of a compaction reopens a consistent log: a
///    contiguous range with the right `term_at(first_index() - 1)`.
///  - `reset(i, t)` drops the whole log: afterwards it is empty and continues after (i, t):
///    `first_index() == i + 1`, `last_index() == i`, `term_at(i) == t`, and
///    `durable_index() == i` once the reset is on stable storage (until then it is at most
///    the lower of `i` and its value before). Used when a snapshot at (i, t) replaces the log
///    (a follower installs one, or a restart finds a snapshot newer than the log's end). A
///    crash reopens either the old log or the reset one, never a mix.
///
/// ## Optional capabilities, detected when present
///  - `void poll(time_point now)`: completes writes whose simulated latency has passed.
///  - `std::error_code error() const`: a fatal storage failure (the node stops). A store
///    that reads entries back from storage (file::log_store keeps only a bounded tail in
///    memory) reports a failed or corrupt read here; the entry `at()` then returned is a
///    placeholder (right index and term, type noop, no payload) that a caller must not send
///    or apply: check `error()` after reading entries and before using them.
///  - `compact_before(i)` and `reset(i, t)`: see above (`detail::compactable_store`).
///  - `set_durable_handler(f)`: `f(index)` is called when durability advances.

#include <concepts>
#include <functional>
#include <span>
#include <type_traits>
#include <system_error>

#include "raftkit/types.hpp"

namespace raftkit {

/// What a log store must provide. Indexes are contiguous from `first_index()` to
/// `last_index()`; an empty log has `last_index() == first_index() - 1`.
template <class L>
concept log_store = requires(L& s, const L& cs, index_t i, std::span<const entry> es,
                             const hard_state& hs) {
  /// First index held (1 until a prefix is compacted away).
  { cs.first_index() } -> std::same_as<index_t>;
  /// Last index held; 0 for an empty log.
  { cs.last_index() } -> std::same_as<index_t>;
  /// Term of entry `i`, for first_index() - 1 <= i <= last_index() (see compaction);
  /// 0 otherwise.
  { cs.term_at(i) } -> std::same_as<term_t>;
  /// Entry `i`; precondition first_index() <= i <= last_index().
  { cs.at(i) } -> std::convertible_to<entry>;
  /// Highest index known to be on stable storage (never above last_index()); drops on
  /// truncation (see the file comment).
  { cs.durable_index() } -> std::same_as<index_t>;
  /// Appends entries that start at last_index() + 1. Durability follows later.
  { s.append(es) } -> std::same_as<void>;
  /// Removes every entry after `i` (a conflicting suffix, §5.3). Never below commit, nor
  /// below first_index() - 1. durable_index() is at most `i` when it returns.
  { s.truncate_after(i) } -> std::same_as<void>;
  /// The persisted term and vote (zeros on a fresh store).
  { cs.load_hard_state() } -> std::same_as<hard_state>;
  /// Persists term and vote; durable when it returns.
  { s.save_hard_state(hs) } -> std::same_as<void>;
};

namespace detail {
template <class L>
concept pollable_store = requires(L& s, time_point t) { s.poll(t); };
template <class L>
concept failable_store = requires(const L& s) {
  { s.error() } -> std::convertible_to<std::error_code>;
};
template <class L>
concept durable_notifying_store = requires(L& s, std::function<void(index_t)> f) {
  s.set_durable_handler(std::move(f));
};
/// A store that can forget a durable prefix and be reset to a snapshot (rules in the file
/// comment); required only of stores used with snapshots.
template <class L>
concept compactable_store = requires(L& s, index_t i, term_t t) {
  s.compact_before(i);  // forget entries below min(i, durable_index() + 1)
  s.reset(i, t);        // drop the whole log: afterwards empty, continuing after (i, t)
};
}  // namespace detail

/// A log store lent to a node through a pointer-like `Holder`. A node holds its
/// policies by value; a store that cannot move (one that owns threads or files, such as
/// file::log_store) is kept elsewhere and reached through this handle:
///  - `log_store_ref<L>` (Holder = L*): the caller owns the store, which must outlive
///    the node; build it with `log_store_ref(store)`.
///  - `log_store_ref<L, std::unique_ptr<L>>`: the handle owns the store on the heap.
/// Optional capabilities of `L` are forwarded, and only those, so the engine detects
/// the same ones it would on the store itself.
template <log_store L, class Holder = L*>
class log_store_ref {
 public:
  explicit log_store_ref(L& store) noexcept
    requires std::is_same_v<Holder, L*>
      : s_(&store) {}
  explicit log_store_ref(Holder h) noexcept
    requires(!std::is_same_v<Holder, L*>)
      : s_(std::move(h)) {}

  index_t first_index() const { return s_->first_index(); }
  index_t last_index() const { return s_->last_index(); }
  term_t term_at(index_t i) const { return s_->term_at(i); }
  decltype(auto) at(index_t i) const { return s_->at(i); }
  index_t durable_index() const { return s_->durable_index(); }
  void append(std::span<const entry> es) { s_->append(es); }
  void truncate_after(index_t i) { s_->truncate_after(i); }
  hard_state load_hard_state() const { return s_->load_hard_state(); }
  void save_hard_state(const hard_state& hs) { s_->save_hard_state(hs); }

  void poll(time_point t)
    requires detail::pollable_store<L>
  {
    s_->poll(t);
  }
  std::error_code error() const
    requires detail::failable_store<L>
  {
    return s_->error();
  }
  void set_durable_handler(std::function<void(index_t)> f)
    requires detail::durable_notifying_store<L>
  {
    s_->set_durable_handler(std::move(f));
  }
  void compact_before(index_t i)
    requires detail::compactable_store<L>
  {
    s_->compact_before(i);
  }
  void reset(index_t i, term_t t)
    requires detail::compactable_store<L>
  {
    s_->reset(i, t);
  }

  /// The store itself.
  L& get() const noexcept { return *s_; }

 private:
  Holder s_;
};

}  // namespace raftkit
