#pragma once
/// \file A growable ring buffer (FIFO with random access). Unlike std::deque it keeps
/// one block and reuses it, so a queue that reaches its working size stops allocating.

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"

namespace raftkit::detail {

template <class T>
class ring {
 public:
  ring() = default;
  explicit ring(std::size_t capacity) { reserve(capacity); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t capacity() const noexcept { return slots_.size(); }

  T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & mask()]; }
  const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & mask()]; }
  T& front() noexcept { return (*this)[0]; }
  T& back() noexcept { return (*this)[size_ - 1]; }
  const T& front() const noexcept { return (*this)[0]; }
  const T& back() const noexcept { return (*this)[size_ - 1]; }

  void push_back(T v) {
    if (size_ == slots_.size()) reserve(slots_.empty() ? 16 : slots_.size() * 2);
    slots_[(head_ + size_) & mask()] = std::move(v);
    ++size_;
  }
  /// Removes and returns the first element.
  T pop_front() {
    RAFTKIT_ASSERT(size_ > 0, "pop_front on empty ring");
    T v = std::move(slots_[head_]);
    slots_[head_] = T{};
    head_ = (head_ + 1) & mask();
    --size_;
    return v;
  }
  void pop_back() {
    RAFTKIT_ASSERT(size_ > 0, "pop_back on empty ring");
    --size_;
    slots_[(head_ + size_) & mask()] = T{};
  }
  /// Keeps the first n elements.
  void truncate(std::size_t n) {
    while (size_ > n) pop_back();
  }
  void clear() {
    while (size_) pop_back();
    head_ = 0;
  }
  /// Grows storage to at least n slots (rounded up to a power of two).
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n) cap *= 2;
    if (cap <= slots_.size()) return;
    std::vector<T> next(cap);
    for (std::size_t i = 0; i < size_; ++i) next[i] = std::move((*this)[i]);
    slots_ = std::move(next);
    head_ = 0;
  }

 private:
  std::size_t mask() const noexcept { return slots_.size() - 1; }
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace raftkit::detail
