#pragma once
/// \file The state machine policy: the user's replicated state.
///
/// Only `apply` is required. Its return value (any movable type, or void) is handed to
/// the proposal's completion on the node that accepted the proposal.
///
/// Optional capabilities, detected from the type (see `has_query` and `has_digest`):
///
///  - `R query(std::span<const std::byte> command) const`: answers a read-only command
///    from the current state without changing it. A read that `basic_node::read_index`
///    confirmed is answered this way on the node that confirmed it, with no log entry;
///    the simulator's clients do so for the reads their workload marks as reads. Called
///    only between applies, never concurrently with one. `R` is usually the type `apply`
///    returns, so that a read answers the same through the log or through ReadIndex.
///  - `std::uint64_t digest() const`: a fingerprint of the whole replicated state. Two
///    replicas that applied the same commands up to the same index must give the same
///    digest; anything kept outside the replicated state (caches, statistics, the node's
///    id) must not enter it. The simulator's invariant checker compares the digests of
///    replicas at equal applied indexes after every step, so a state machine that is not
///    deterministic (it reads a clock, a random number, the address of an object, an
///    unordered container's iteration order, or a file that survives a restart) is caught
///    at the first index where the replicas were seen to differ. It is called whenever a
///    replica's applied index moved, so keep it cheap: update it as `apply` changes the
///    state (an XOR or sum of per-item hashes) rather than hashing everything each time.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <variant>

#include "raftkit/types.hpp"

namespace raftkit {

namespace detail {
/// A type that is not void (a query must return its answer).
template <class T>
concept not_void = !std::is_void_v<T>;
}  // namespace detail

/// What a state machine must provide: apply a committed command at an index.
template <class S>
concept state_machine = requires(S& s, index_t i, std::span<const std::byte> cmd) {
  s.apply(i, cmd);
};

/// The result type a state machine's `apply` returns; `std::monostate` for void.
template <class S>
using apply_result_t = std::conditional_t<
    std::is_void_v<decltype(std::declval<S&>().apply(index_t{}, std::span<const std::byte>{}))>,
    std::monostate,
    std::remove_cvref_t<decltype(std::declval<S&>().apply(index_t{}, std::span<const std::byte>{}))>>;

/// Whether S answers read-only commands without the log: `s.query(command)` on a const S.
template <class S>
concept has_query = requires(const S& s, std::span<const std::byte> cmd) {
  { s.query(cmd) } -> detail::not_void;
};

/// What `query` returns, for a state machine with has_query.
template <has_query S>
using query_result_t =
    std::remove_cvref_t<decltype(std::declval<const S&>().query(std::span<const std::byte>{}))>;

/// Whether S fingerprints its replicated state: `s.digest()` on a const S gives a 64-bit
/// value that is equal on replicas at equal applied indexes.
template <class S>
concept has_digest = requires(const S& s) {
  { s.digest() } -> std::convertible_to<std::uint64_t>;
};

}  // namespace raftkit
