#pragma once
/// \file The state machine policy: the user's replicated state.
///
/// Only `apply` is required. Its return value (any movable type, or void) is handed to
/// the proposal's completion on the node that accepted the proposal.

#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>
#include <variant>

#include "raftkit/types.hpp"

namespace raftkit {

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

}  // namespace raftkit
