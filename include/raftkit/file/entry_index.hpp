#pragma once
/// \file What raftkit::file::log_store keeps in memory for its log (owner thread only):
///  - `entry_index`: for every entry held, where its record is (8 bytes each), and the terms
///    as runs of equal terms (16 bytes per run: a run per leader, not per entry);
///  - `tail_cache`: the newest entries with their payloads, bounded in bytes.
/// So memory per entry is 8 bytes (up to twice that while a vector has room to grow or a
/// compacted front not yet reclaimed) plus 16 bytes per term change, whatever the payloads;
/// payloads in memory are bounded by the cache.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file::detail {

/// A queue with random access in one vector: elements live at [head_, size()); the front
/// is dropped by moving head_, and the vector is compacted once half of it is dropped (so
/// each element is moved at most once more, and memory stays within twice what is held).
/// Cheaper than a ring on the append path (no index masking), which is the one that counts.
template <class T>
class fifo {
 public:
  std::size_t size() const noexcept { return v_.size() - head_; }
  bool empty() const noexcept { return v_.size() == head_; }
  std::size_t capacity() const noexcept { return v_.capacity(); }
  T& operator[](std::size_t i) noexcept { return v_[head_ + i]; }
  const T& operator[](std::size_t i) const noexcept { return v_[head_ + i]; }
  T& front() noexcept { return v_[head_]; }
  T& back() noexcept { return v_.back(); }
  const T& back() const noexcept { return v_.back(); }
  void push_back(const T& x) { v_.push_back(x); }
  /// Appends n value-initialised elements.
  void grow(std::size_t n) { v_.resize(v_.size() + n); }
  void pop_back() { v_.pop_back(); }
  /// Keeps the first n elements.
  void truncate(std::size_t n) { v_.resize(head_ + std::min(n, size())); }
  /// Drops the first n elements.
  void drop_front(std::size_t n) {
    n = std::min(n, size());
    for (std::size_t k = head_; k < head_ + n; ++k) v_[k] = T{};  // release what they hold now
    head_ += n;
    if (head_ == v_.size()) {
      v_.clear();
      head_ = 0;
    } else if (head_ >= 64 && head_ * 2 >= v_.size()) {
      v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    v_.clear();
    head_ = 0;
  }

 private:
  std::vector<T> v_;
  std::size_t head_ = 0;
};

/// Indexes first()..last() of a log, each with its term and the offset of its record in its
/// segment (0 until the writer reports it: 0 is never a record's offset, the header is
/// there), and the term of entry first() - 1.
class entry_index {
 public:
  index_t first() const noexcept { return first_; }
  index_t last() const noexcept { return first_ + offsets_.size() - 1; }

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

  /// Adds entry last() + 1 with term `t` (terms never decrease along a log).
  void append(term_t t) {
    if (runs_.empty() || runs_.back().term != t) runs_.push_back(run{last() + 1, t});
    offsets_.push_back(0);
  }
  /// Adds entries last() + 1, ... (their terms), offsets unknown.
  void append(std::span<const entry> es) {
    index_t i = last() + 1;
    term_t prev = runs_.empty() ? ~term_t{0} : runs_.back().term;
    for (const entry& e : es) {
      if (e.term != prev) runs_.push_back(run{i, prev = e.term});
      ++i;
    }
    offsets_.grow(es.size());
  }

  /// The offset of entry `i`'s record in its segment, or 0 if not known yet.
  std::uint64_t offset(index_t i) const noexcept { return offsets_[i - first_]; }
  void set_offset(index_t i, std::uint64_t off) noexcept {
    if (i >= first_ && i <= last()) offsets_[i - first_] = off;
  }

  /// Keeps entries up to `i` (first() - 1 <= i).
  void truncate_after(index_t i) {
    if (i >= last()) return;
    RAFTKIT_ASSERT(i + 1 >= first_, "entry_index: truncation below the first entry");
    offsets_.truncate(static_cast<std::size_t>(i + 1 - first_));
    while (!runs_.empty() && runs_.back().from > i) runs_.pop_back();
  }

  /// Forgets entries below `i` (first() <= i <= last() + 1); the base becomes entry i - 1's term.
  void compact_before(index_t i) {
    if (i <= first_) return;
    RAFTKIT_ASSERT(i <= last() + 1, "entry_index: compaction past the end");
    base_ = term_at(i - 1);
    std::size_t drop = 0;
    while (drop + 1 < runs_.size() && runs_[drop + 1].from <= i) ++drop;
    runs_.drop_front(drop);
    if (i > last()) runs_.clear();
    else if (!runs_.empty()) runs_.front().from = i;
    offsets_.drop_front(static_cast<std::size_t>(i - first_));
    first_ = i;
  }

  /// Empties the index, which continues after (i, t).
  void reset(index_t i, term_t t) {
    offsets_.clear();
    runs_.clear();
    first_ = i + 1;
    base_ = t;
  }

  /// Bytes held (capacity, not size: what the index really costs).
  std::size_t bytes() const noexcept {
    return offsets_.capacity() * sizeof(std::uint64_t) + runs_.capacity() * sizeof(run);
  }

 private:
  struct run {
    index_t from = 0;  // first index of a run of entries with term `term`
    term_t term = 0;
  };
  index_t first_ = 1;
  term_t base_ = 0;
  fifo<std::uint64_t> offsets_;
  fifo<run> runs_;
};

/// The newest entries of the log with their payloads: a contiguous range begin()..end() - 1
/// ending at the log's last entry, at most max_bytes (payload + sizeof(entry) each) once
/// the owner evicts what is durable. Entries not yet durable stay (see trim_to).
class tail_cache {
 public:
  /// Index of the first entry held (end() when empty).
  index_t begin() const noexcept { return begin_; }
  index_t end() const noexcept { return begin_ + entries_.size(); }
  bool holds(index_t i) const noexcept { return i >= begin_ && i < end(); }
  const entry& operator[](index_t i) const noexcept { return entries_[i - begin_]; }
  entry& operator[](index_t i) noexcept { return entries_[i - begin_]; }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

  static std::size_t cost(const entry& e) noexcept { return sizeof(entry) + e.payload.size(); }

  /// Adds entry end().
  void push(const entry& e) {
    bytes_ += cost(e);
    entries_.push_back(e);
  }
  /// Drops the oldest entries while over `max_bytes`, only those at or below `upto` (the
  /// durable index: their records are on disk and can be read back) and accepted by
  /// `evictable` (their location is known).
  template <class F>
  void trim_to(std::size_t max_bytes, index_t upto, F&& evictable) {
    std::size_t n = 0;
    for (; bytes_ > max_bytes && n < entries_.size() && begin_ + n <= upto && evictable(begin_ + n); ++n)
      bytes_ -= cost(entries_[n]);
    entries_.drop_front(n);
    begin_ += n;
  }
  /// Removes the entries after `i`, handing each to `dropped` (which may take its payload).
  template <class F>
  void truncate_after(index_t i, F&& dropped) {
    while (!entries_.empty() && end() - 1 > i) {
      entry& e = entries_.back();
      bytes_ -= cost(e);
      dropped(e);
      entries_.pop_back();
    }
    if (entries_.empty()) begin_ = i + 1;
  }
  /// Removes the entries below `i`; they are durable (compaction is clamped so), so the
  /// writer reads none of them.
  void drop_before(index_t i) {
    std::size_t n = 0;
    for (; n < entries_.size() && begin_ + n < i; ++n) bytes_ -= cost(entries_[n]);
    entries_.drop_front(n);
    begin_ += n;
    if (entries_.empty()) begin_ = std::max(begin_, i);
  }
  /// Empties the cache, which continues at `next`, handing each entry to `dropped`.
  template <class F>
  void clear(index_t next, F&& dropped) {
    truncate_after(begin_ - 1, dropped);
    begin_ = next;
  }

 private:
  fifo<entry> entries_;
  index_t begin_ = 1;
  std::size_t bytes_ = 0;
};

}  // namespace raftkit::file::detail
