#pragma once
/// \file The transport policy: how a node's messages reach its peers.
///
/// `send` never blocks and may drop a message (Raft tolerates loss); delivery in the
/// other direction is the driver's job: it calls `basic_node::receive`.

#include <concepts>
#include <utility>

#include "raftkit/message.hpp"

namespace raftkit {

/// What a transport must provide: a non-blocking, possibly lossy `send`.
template <class T>
concept transport = requires(T& t, message m) {
  { t.send(std::move(m)) } -> std::same_as<void>;
};

}  // namespace raftkit
