#pragma once
/// \file What raftkit::file::log_store keeps in memory for its log (owner thread only).
///
/// `entry_index` holds first()..last() of the log in two parts:
///  - *hot*: the newest entries, held whole (payload shared with whoever appended them;
///    their positions follow from their sizes) — bounded in bytes by the store (options::
///    max_cached_bytes), except that entries not yet durable always stay hot (the writer
///    reads their payloads in place, and they cannot be read back yet);
///  - *cold*: older entries, of which only the record's position is kept: 8 bytes each.
/// Terms are kept as runs of equal terms (16 bytes per run: a run per leader, not per
/// entry). So memory per entry is 8 bytes plus 16 bytes per change of term, whatever the
/// payloads, and payloads in memory are bounded by the hot part.
///
/// A *position* is where an entry's record starts in the stream of every record appended
/// (record_size of each payload, back to back), so within a segment an entry's offset is
/// segment_header_size + position - (position of the segment's first record): the writer
/// lays records out exactly so (a seal only ends a segment), and never has to say where
/// each one went. A truncation rewinds the stream to the removed entry's position, where
/// the writer puts the next record too.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <utility>

#include "raftkit/assert.hpp"
#include "raftkit/file/format.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file::detail {

class entry_index {
 public:
  index_t first() const noexcept { return first_; }
  index_t last() const noexcept { return hot_begin() + hot_.size() - 1; }

  /// Term of entry `i`, of first() - 1 (the base), or 0 outside.
  term_t term_at(index_t i) const noexcept {
    if (i + 1 == first_) return base_;
    if (i < first_ || i > last()) return 0;
    // the last run starting at or before i (runs are few; usually the newest one)
    std::size_t lo = 0, hi = runs_.size() - 1;
    if (runs_[hi].from <= i) return runs_[hi].term;
    while (lo < hi) {
      const std::size_t mid = (lo + hi + 1) / 2;
      if (runs_[mid].from <= i) lo = mid;
      else hi = mid - 1;
    }
    return runs_[lo].term;
  }

  /// Whether entry `i` is held whole, and the entry (precondition: hot(i)).
  bool hot(index_t i) const noexcept { return i >= hot_begin() && i <= last(); }
  const entry& hot_entry(index_t i) const noexcept { return hot_[i - hot_begin()]; }

  /// Position of entry `i`'s record (first() <= i <= last()). A hot entry's is summed from
  /// the nearer end of the hot part: the callers (a new segment's first entry, a
  /// truncation point) are near its end, so a hot entry needs no position of its own.
  std::uint64_t position(index_t i) const noexcept {
    if (i < hot_begin()) return cold_[i - first_];
    const std::size_t k = i - hot_begin();
    std::uint64_t p;
    if (k <= hot_.size() / 2) {
      p = hot_pos_;
      for (std::size_t j = 0; j < k; ++j) p += record_size(hot_[j].payload.size());
    } else {
      p = next_;
      for (std::size_t j = k; j < hot_.size(); ++j) p -= record_size(hot_[j].payload.size());
    }
    return p;
  }
  /// Position the next entry's record will have.
  std::uint64_t next_position() const noexcept { return next_; }
  /// Sets it (recovery; the hot part is empty).
  void set_next_position(std::uint64_t p) {
    RAFTKIT_ASSERT(hot_.empty(), "entry_index: positions are set before hot entries");
    next_ = hot_pos_ = p;
  }

  /// Adds entries last() + 1, ... (terms never decrease along a log), hot. Preconditions
  /// (checked): contiguous from last() + 1, payloads at most max_payload bytes.
  void append(std::span<const entry> es) {
    // Copying an entry touches its payload's reference count (and its size is read): for
    // payloads not in the cache, fetching them a few entries ahead overlaps the misses.
    // One pass does all the per-entry work of an append on the owner's side.
    constexpr std::size_t ahead = 8;
    for (std::size_t k = 0; k < std::min(ahead, es.size()); ++k) es[k].payload.prefetch();
    index_t i = last() + 1;
    term_t prev = runs_.empty() ? ~term_t{0} : runs_.back().term;
    for (std::size_t k = 0; k < es.size(); ++k, ++i) {
      if (k + ahead < es.size()) es[k + ahead].payload.prefetch();
      const entry& e = es[k];
      const std::size_t n = e.payload.size();
      RAFTKIT_ASSERT(e.index == i, "file::log_store::append: not contiguous");
      RAFTKIT_ASSERT(n <= max_payload, "file::log_store::append: payload too large");
      if (e.term != prev) runs_.push_back(run{i, prev = e.term});
      hot_.push_back(e);
      next_ += record_size(n);
      hot_bytes_ += sizeof(entry) + n;
    }
  }
  /// Adds entry last() + 1 (term `t`, its record at position `pos`), cold (recovery; the
  /// hot part is empty).
  void append_cold(term_t t, std::uint64_t pos) {
    RAFTKIT_ASSERT(hot_.empty(), "entry_index: cold entries go before hot ones");
    if (runs_.empty() || runs_.back().term != t) runs_.push_back(run{last() + 1, t});
    cold_.push_back(pos);
  }

  /// Makes the oldest hot entries cold while the hot part is over `max_bytes`, only those
  /// at or below `upto` (durable: their records are on disk) and accepted by `readable`.
  template <class F>
  void cool(std::size_t max_bytes, index_t upto, F&& readable) {
    while (hot_bytes_ > max_bytes && !hot_.empty() && hot_begin() <= upto && readable(hot_begin())) {
      cold_.push_back(hot_pos_);
      drop_hot_front();
    }
  }

  /// Keeps entries up to `i` (first() - 1 <= i); each hot entry removed is handed to
  /// `dropped` (which may take its payload).
  template <class F>
  void truncate_after(index_t i, F&& dropped) {
    if (i >= last()) return;
    RAFTKIT_ASSERT(i + 1 >= first_, "entry_index: truncation below the first entry");
    const std::uint64_t at = position(i + 1);
    while (!hot_.empty() && last() > i) {
      hot_bytes_ -= cost(hot_.back());
      dropped(hot_.back());
      hot_.pop_back();
    }
    if (cold_.size() > i + 1 - first_) cold_.erase(cold_.begin() + static_cast<std::ptrdiff_t>(i + 1 - first_), cold_.end());
    while (!runs_.empty() && runs_.back().from > i) runs_.pop_back();
    next_ = at;
    if (hot_.empty()) hot_pos_ = at;
  }

  /// Forgets entries below `i` (first() <= i <= last() + 1): they are durable, so the
  /// writer reads none of them. The base becomes entry i - 1's term.
  void compact_before(index_t i) {
    if (i <= first_) return;
    RAFTKIT_ASSERT(i <= last() + 1, "entry_index: compaction past the end");
    base_ = term_at(i - 1);
    std::size_t drop = 0;
    while (drop + 1 < runs_.size() && runs_[drop + 1].from <= i) ++drop;
    runs_.erase(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(drop));
    if (i > last()) runs_.clear();
    else if (!runs_.empty()) runs_.front().from = i;
    const std::size_t cold_drop = std::min<std::size_t>(cold_.size(), i - first_);
    cold_.erase(cold_.begin(), cold_.begin() + static_cast<std::ptrdiff_t>(cold_drop));
    for (std::size_t k = cold_drop; k < i - first_; ++k) drop_hot_front();
    first_ = i;
  }

  /// Empties the index, which continues after (i, t); hot entries go to `dropped`.
  template <class F>
  void reset(index_t i, term_t t, F&& dropped) {
    for (entry& e : hot_) dropped(e);
    hot_.clear();
    hot_bytes_ = 0;
    hot_pos_ = next_;
    cold_.clear();
    runs_.clear();
    first_ = i + 1;
    base_ = t;
  }

  /// Entries held whole, and their bytes (payload plus sizeof(entry) each).
  std::size_t hot_entries() const noexcept { return hot_.size(); }
  std::size_t hot_bytes() const noexcept { return hot_bytes_; }
  /// Bytes of the per-entry metadata: positions of cold entries and term runs (whole deque
  /// blocks, what they really cost).
  std::size_t index_bytes() const noexcept {
    return blocks(cold_.size() * sizeof(std::uint64_t)) + blocks(runs_.size() * sizeof(run));
  }
  static std::size_t cost(const entry& e) noexcept { return sizeof(entry) + e.payload.size(); }

 private:
  struct run {
    index_t from = 0;  // first index of a run of entries with term `term`
    term_t term = 0;
  };
  index_t hot_begin() const noexcept { return first_ + cold_.size(); }
  /// Drops the oldest hot entry; the next one's position follows from its record's size.
  void drop_hot_front() {
    const std::size_t n = hot_.front().payload.size();
    hot_bytes_ -= sizeof(entry) + n;
    hot_pos_ += record_size(n);
    hot_.pop_front();
  }
  static std::size_t blocks(std::size_t bytes) noexcept { return (bytes / 512 + 1) * 512; }

  // std::deque: its blocks never move, so growing it never copies what it holds (a vector
  // doubling under a million entries stalls the owner), and dropping the front frees blocks.
  index_t first_ = 1;
  term_t base_ = 0;
  std::uint64_t next_ = 0;     // position of entry last() + 1
  std::uint64_t hot_pos_ = 0;  // position of entry hot_begin()
  std::deque<std::uint64_t> cold_;  // positions of first_ .. hot_begin() - 1
  std::deque<entry> hot_;           // hot_begin() .. last()
  std::size_t hot_bytes_ = 0;
  std::deque<run> runs_;
};

}  // namespace raftkit::file::detail
