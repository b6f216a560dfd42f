#pragma once
/// \file Snapshots from the state machine's side (Raft §7, thesis chapter 5): the opt-in
/// capability, the byte streams it writes and reads, and `no_snapshots`.
///
/// ## The capability (detected; a state machine without it works, with compaction off)
///
/// ```cpp
/// struct my_state {
///   R apply(index_t, std::span<const std::byte>);
///   View snapshot();                               // engine thread, between applies
///   std::error_code restore(raftkit::snapshot_reader&);  // engine thread (or void; may throw)
/// };
/// struct View {                                     // movable
///   std::error_code write(raftkit::snapshot_writer&);   // any thread (or void; may throw)
/// };
/// ```
///
/// - `snapshot()` runs on the engine's thread right after the entry at the snapshot's index
///   was applied and before the next one is: it must capture a point-in-time view cheaply
///   (a copy-on-write handle, a version number of a multi-version store, a copy of a small
///   state...), not write anything.
/// - `View::write(w)` streams that view into `w`. It may run on another thread (the Asio
///   driver runs it on a worker) *while the engine goes on calling `apply`*: the view must
///   not read state that `apply` changes. The state may be larger than memory: write it in
///   pieces.
/// - `restore(r)` replaces the whole state with the snapshot read from `r` (at start-up, or
///   when a leader sent one). It runs on the engine's thread, and nothing else runs
///   meanwhile. An error (a returned code or a thrown exception) halts the node.
///
/// A snapshot also records the cluster configuration at its index; the engine writes that
/// itself, the state machine never sees it.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "raftkit/snapshot_store.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// The snapshot store policy of a node without snapshots (the default): the log grows,
/// nothing is compacted, and a follower is always repaired from the log.
struct no_snapshots {};

/// The byte stream a state machine writes a snapshot into (a handle on a snapshot sink).
class snapshot_writer {
 public:
  template <snapshot_sink Sink>
  explicit snapshot_writer(Sink& s) noexcept
      : obj_(&s), write_([](void* o, std::span<const std::byte> b) { return static_cast<Sink*>(o)->write(b); }) {}

  /// Appends `bytes`; an error is sticky (the snapshot is discarded).
  std::error_code write(std::span<const std::byte> bytes) { return write_(obj_, bytes); }
  std::error_code write(std::string_view s) { return write(std::as_bytes(std::span(s.data(), s.size()))); }
  /// Appends a trivially copyable value in this machine's byte order.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  std::error_code write_value(const T& v) {
    return write(std::as_bytes(std::span(&v, 1)));
  }

 private:
  void* obj_;
  std::error_code (*write_)(void*, std::span<const std::byte>);
};

/// The byte stream a state machine restores a snapshot from (a handle on a snapshot
/// source, read in order from the start).
class snapshot_reader {
 public:
  template <snapshot_source Source>
  explicit snapshot_reader(Source& s) noexcept
      : obj_(&s),
        size_(s.meta().size),
        read_([](void* o, std::uint64_t off, std::span<std::byte> out) { return static_cast<Source*>(o)->read_at(off, out); }),
        error_([](const void* o) { return static_cast<const Source*>(o)->error(); }) {}

  /// Copies the next bytes into `out`: the number copied, short only at the end (0 there)
  /// or on an error (see error()).
  std::size_t read(std::span<std::byte> out) {
    const std::size_t n = read_(obj_, offset_, out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), remaining()))));
    offset_ += n;
    return n;
  }
  /// Reads exactly `out.size()` bytes; false (and nothing guaranteed in `out`) if the
  /// snapshot ends first or a read fails.
  bool read_exact(std::span<std::byte> out) { return read(out) == out.size(); }
  /// Reads a trivially copyable value written by snapshot_writer::write_value.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  bool read_value(T& v) {
    return read_exact(std::as_writable_bytes(std::span(&v, 1)));
  }
  /// Content bytes in all, and not yet read.
  std::uint64_t size() const noexcept { return size_; }
  std::uint64_t remaining() const noexcept { return size_ - offset_; }
  /// The first read error, if any.
  std::error_code error() const { return error_(obj_); }

 private:
  void* obj_;
  std::uint64_t size_;
  std::uint64_t offset_ = 0;
  std::size_t (*read_)(void*, std::uint64_t, std::span<std::byte>);
  std::error_code (*error_)(const void*);
};

namespace detail {
/// What a snapshot view must offer: `write(snapshot_writer&)`.
template <class V>
concept snapshot_view = std::movable<V> && requires(V& v, snapshot_writer& w) { v.write(w); };
}  // namespace detail

/// The opt-in snapshot capability of a state machine (see the file comment).
template <class S>
concept snapshottable = requires(S& s, snapshot_reader& r) {
  { s.snapshot() } -> detail::snapshot_view;
  s.restore(r);
};

namespace detail {
/// Calls `f` and turns a void result into success, an error code into itself, and an
/// exception into `on_throw`.
template <class F>
std::error_code call_for_error(F&& f, std::error_code on_throw) noexcept {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      f();
      return {};
    } else {
      return std::error_code(f());
    }
  } catch (...) {
    return on_throw;
  }
}
}  // namespace detail

}  // namespace raftkit
