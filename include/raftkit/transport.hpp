#pragma once
/// \file The transport policy: how a node's messages reach its peers.
///
/// `send` never blocks and may drop a message (Raft tolerates loss); delivery in the
/// other direction is the driver's job: it calls `basic_node::receive`.
///
/// Two concepts live here. `transport` is what the engine needs: a `send`. A driver that
/// runs the engine on an event loop, as `raftkit::asio::node` does, needs more of a
/// transport: `async_transport`, below, says what, without naming an event library (the
/// concept is checked here; the Asio-specific parts, such as the executor being an Asio
/// executor, are checked by the driver).

#include <concepts>
#include <cstddef>
#include <limits>
#include <utility>

#include "raftkit/message.hpp"

namespace raftkit {

/// What a transport must provide: a non-blocking, possibly lossy `send`.
template <class T>
concept transport = requires(T& t, message m) {
  { t.send(std::move(m)) } -> std::same_as<void>;
};

/// What a transport can carry, in its own encoded bytes, so a driver can fit the engine's
/// batching and pipelining limits to it (see `raftkit::asio::node`). The defaults say
/// "no limit": a driver then changes nothing.
struct transport_limits {
  /// The largest encoded message `send` carries (for a framed transport: one frame,
  /// header included); a bigger one is dropped, on every retry.
  std::size_t max_message_bytes = std::numeric_limits<std::size_t>::max();
  /// Encoded bytes of bulk messages (those carrying entries) one peer's send queue holds;
  /// beyond it `send` drops them.
  std::size_t max_queue_bytes = std::numeric_limits<std::size_t>::max();
  /// Bulk messages one peer's send queue holds.
  std::size_t max_queue_messages = std::numeric_limits<std::size_t>::max();
  /// Encoded bytes of a message that carries no entries (for a framed transport, the
  /// frame header included).
  std::size_t message_overhead = 0;
  /// Encoded bytes of one entry beyond its payload.
  std::size_t entry_overhead = 0;
};

namespace detail {
/// Stands for the driver's receive callback in `async_transport`.
struct message_sink {
  void operator()(message&&) const {}
};
}  // namespace detail

/// A transport a driver can run a node on: the engine's `transport` plus an executor, a
/// receive handler and a way to stop. `raftkit::asio::tcp_transport` is one;
/// `examples/custom_transport` shows a small one over Unix-domain sockets.
///
/// - **Construction and start.** The driver builds the transport once, by calling a
///   factory the user gives it with the receive handler it installs:
///   `make_transport(T::receive_handler h) -> T` (returned as a prvalue, so the
///   transport need not move). The transport is live from then on: it may accept
///   connections and call `h` at once (a driver ignores what arrives before it starts).
/// - **Executor.** `get_executor()` is the executor the transport runs on. It must run one
///   handler at a time (for Asio: a strand), because the driver runs the engine on it
///   too: the driver calls `send` only on it, and the transport calls `h` only on it.
/// - **Delivery.** `h(message&&)` receives each message addressed to this node that
///   passed the transport's own checks (framing, sender identity); `h` does not throw.
///   `T::receive_handler` is constructible from any callable taking `message&&`.
/// - **Sending.** `send` never blocks and may drop (see `transport`). A transport should
///   give messages without entries (votes and their replies, heartbeats, append replies,
///   timeout_now, forward replies) precedence over bulk ones and not drop them because
///   bulk data filled a queue: those decide elections.
/// - **Stopping.** `close()` is idempotent and callable from any thread; once it has run
///   on the executor, `h` is never called again and every connection and timer is gone,
///   so the event loop can run dry. A driver that wants what it sent to leave first
///   waits for `backlog()` (below) to reach zero, for a bounded time, then closes.
///
/// Optional members, detected by the driver:
/// - `transport_limits limits() const`: what one message and one peer's queue can hold;
///   the driver fits the engine's `max_bytes_per_message` and `max_inflight_*` to it.
/// - `std::size_t backlog() const`, on the executor: messages accepted by `send` and
///   neither written nor dropped yet; lets a stopping driver drain before `close`.
/// - `stats() const`, any thread: the transport's counters, of any type; the driver
///   passes them through (`raftkit::asio::node::transport_stats`).
template <class T>
concept async_transport = transport<T> && requires(T& t, const T& ct) {
  typename T::executor_type;
  typename T::receive_handler;
  requires std::constructible_from<typename T::receive_handler, detail::message_sink>;
  { ct.get_executor() } -> std::convertible_to<typename T::executor_type>;
  { t.close() } -> std::same_as<void>;
};

/// An async_transport that reports what it can carry.
template <class T>
concept transport_with_limits = requires(const T& t) {
  { t.limits() } -> std::same_as<transport_limits>;
};

/// An async_transport that reports how many sent messages have not left yet.
template <class T>
concept transport_with_backlog = requires(const T& t) {
  { t.backlog() } -> std::convertible_to<std::size_t>;
};

}  // namespace raftkit
