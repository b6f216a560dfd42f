#pragma once
/// \file The vocabulary of raftkit: ids, terms, indexes, payload buffers, log entries.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace raftkit {

/// Identifies a node in a cluster. 0 means "no node".
using node_id = std::uint64_t;
/// A Raft term (§5.1). 0 is the term before any election.
using term_t = std::uint64_t;
/// A log index. The first entry has index 1; 0 means "before the log".
using index_t = std::uint64_t;
/// The epoch of the times a clock policy reports. A tag, not a clock: the engine never
/// reads time itself, it asks its clock policy (manual_clock, asio::steady_clock...).
struct clock_epoch {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<clock_epoch, duration>;
  static constexpr bool is_steady = true;
};
/// A span of time, in nanoseconds.
using duration = std::chrono::nanoseconds;
/// A moment as seen by a clock policy: nanoseconds since that clock's epoch. A distinct
/// type from `duration`, so a deadline cannot be passed where a timeout is meant.
using time_point = std::chrono::time_point<clock_epoch, duration>;

inline constexpr node_id no_node = 0;
/// "Whichever node fits best", where a call takes a target node (leadership transfer).
inline constexpr node_id any_node = ~node_id{0};

/// An immutable, reference-counted byte buffer. One allocation holds the count and the
/// bytes; copies share it, so a batch sent to every follower copies no payload.
class shared_bytes {
 public:
  shared_bytes() noexcept = default;

  /// Copies `bytes` into a new buffer (one allocation; none when empty).
  static shared_bytes copy_of(std::span<const std::byte> bytes) {
    shared_bytes b;
    if (bytes.empty()) return b;
    b.rep_ = rep::make(bytes.size());
    std::memcpy(b.rep_->data(), bytes.data(), bytes.size());
    return b;
  }
  static shared_bytes copy_of(std::string_view s) {
    return copy_of(std::as_bytes(std::span<const char>(s.data(), s.size())));
  }
  /// A zero-filled buffer of `n` bytes to be written once through `mutable_data()`
  /// before it is shared.
  static shared_bytes allocate(std::size_t n) {
    shared_bytes b;
    if (n) {
      b.rep_ = rep::make(n);
      std::memset(b.rep_->data(), 0, n);
    }
    return b;
  }

  shared_bytes(const shared_bytes& o) noexcept : rep_(o.rep_) { retain(); }
  shared_bytes(shared_bytes&& o) noexcept : rep_(std::exchange(o.rep_, nullptr)) {}
  shared_bytes& operator=(const shared_bytes& o) noexcept {
    if (this != &o) {
      o.retain();
      release();
      rep_ = o.rep_;
    }
    return *this;
  }
  shared_bytes& operator=(shared_bytes&& o) noexcept {
    if (this != &o) {
      release();
      rep_ = std::exchange(o.rep_, nullptr);
    }
    return *this;
  }
  ~shared_bytes() { release(); }

  std::size_t size() const noexcept { return rep_ ? rep_->size : 0; }
  bool empty() const noexcept { return size() == 0; }
  const std::byte* data() const noexcept { return rep_ ? rep_->data() : nullptr; }
  /// Writable only before the buffer is shared (use_count() == 1).
  std::byte* mutable_data() noexcept { return rep_ ? rep_->data() : nullptr; }
  std::span<const std::byte> bytes() const noexcept { return {data(), size()}; }
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data()), size()};
  }
  /// Asks the CPU to bring the buffer's header (reference count, size, first bytes) into
  /// the cache for writing. For a loop about to copy many buffers that may be cold: their
  /// misses then overlap instead of stalling one atomic increment after another.
  void prefetch() const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    if (rep_) __builtin_prefetch(rep_, 1, 3);
#endif
  }
  long use_count() const noexcept {
    return rep_ ? static_cast<long>(rep_->refs.load(std::memory_order_relaxed)) : 0;
  }
  friend bool operator==(const shared_bytes& a, const shared_bytes& b) noexcept {
    return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
  }

 private:
  struct rep {
    std::atomic<std::uint32_t> refs;
    std::size_t size;
    std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
    static rep* make(std::size_t n) {
      void* p = ::operator new(sizeof(rep) + n);
      return ::new (p) rep{{1}, n};
    }
  };
  void retain() const noexcept {
    if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (rep_ && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      rep_->~rep();
      ::operator delete(rep_);
    }
    rep_ = nullptr;
  }
  rep* rep_ = nullptr;
};

/// What a log entry carries. Only `normal` entries reach the state machine.
enum class entry_type : std::uint8_t {
  normal = 0,  ///< a command for the state machine
  noop = 1,    ///< appended by a new leader to commit earlier terms' entries (§5.4.2, §8)
  config = 2,  ///< reserved: membership change (joint consensus)
};

/// One entry of the replicated log.
struct entry {
  term_t term = 0;
  index_t index = 0;
  entry_type type = entry_type::normal;
  shared_bytes payload;

  /// What an entry costs beyond its payload in batching and flow control (term, index,
  /// type and payload length on the wire).
  static constexpr std::size_t wire_overhead = 24;
  /// Bytes this entry accounts for in batching and flow control.
  std::size_t wire_size() const noexcept { return payload.size() + wire_overhead; }
  friend bool operator==(const entry&, const entry&) = default;
};

/// What must be durable before a vote reply or a message of a new term (§5.1, Fig. 2).
struct hard_state {
  term_t term = 0;
  node_id vote = no_node;
  friend bool operator==(const hard_state&, const hard_state&) = default;
};

namespace detail {
/// Recycles vectors' storage on this thread so a batch in steady state allocates nothing.
template <class T>
class vector_pool {
 public:
  static std::vector<T> take() {
    auto& free = list();
    if (free.empty()) return {};
    std::vector<T> v = std::move(free.back());
    free.pop_back();
    return v;
  }
  static void give(std::vector<T>&& v) noexcept {
    if (v.capacity() == 0 || v.capacity() > max_capacity) return;
    v.clear();
    auto& free = list();
    if (free.size() < max_pooled) free.push_back(std::move(v));
  }

 private:
  static constexpr std::size_t max_pooled = 256;
  static constexpr std::size_t max_capacity = 4096;
  static std::vector<std::vector<T>>& list() {
    thread_local std::vector<std::vector<T>> free = [] {
      std::vector<std::vector<T>> f;
      f.reserve(max_pooled);
      return f;
    }();
    return free;
  }
};
}  // namespace detail

/// A batch of entries carried by one message. Its storage comes from and returns to a
/// per-thread pool, so steady-state replication allocates no vector per message.
class entry_batch {
 public:
  entry_batch() : v_(detail::vector_pool<entry>::take()) {}
  entry_batch(entry_batch&& o) noexcept : v_(std::move(o.v_)) { o.v_ = {}; }
  entry_batch& operator=(entry_batch&& o) noexcept {
    if (this != &o) {
      detail::vector_pool<entry>::give(std::move(v_));
      v_ = std::move(o.v_);
      o.v_ = {};
    }
    return *this;
  }
  entry_batch(const entry_batch& o) : entry_batch() { v_.assign(o.v_.begin(), o.v_.end()); }
  entry_batch& operator=(const entry_batch& o) {
    if (this != &o) v_.assign(o.v_.begin(), o.v_.end());
    return *this;
  }
  ~entry_batch() { detail::vector_pool<entry>::give(std::move(v_)); }

  std::vector<entry>& items() noexcept { return v_; }
  const std::vector<entry>& items() const noexcept { return v_; }
  std::size_t size() const noexcept { return v_.size(); }
  bool empty() const noexcept { return v_.empty(); }
  auto begin() const noexcept { return v_.begin(); }
  auto end() const noexcept { return v_.end(); }
  const entry& operator[](std::size_t i) const noexcept { return v_[i]; }
  const entry& back() const noexcept { return v_.back(); }
  void push_back(entry e) { v_.push_back(std::move(e)); }
  void clear() noexcept { v_.clear(); }
  friend bool operator==(const entry_batch& a, const entry_batch& b) { return a.v_ == b.v_; }

 private:
  std::vector<entry> v_;
};

}  // namespace raftkit
