#pragma once
/// \file raftkit::asio::node: the Asio driver that runs a basic_node over a transport.
///
/// The engine and its transport live on one strand, the transport's executor: every input
/// (a message, a timer tick, a durability notice, a proposal) runs there, so the engine
/// stays single-threaded. Public calls may come from any thread; they post to the strand.
/// Asynchronous calls take an Asio completion token (a callback, `boost::asio::use_future`,
/// `use_awaitable`...): each completes once, never inside the initiating call, through the
/// handler's associated executor (the strand when it has none). The error is a
/// std::error_code, which Asio does not turn into an exception: `use_future` gives a future
/// of `std::tuple<std::error_code, index_t, result_type>` and `co_await ... use_awaitable`
/// that tuple.
///
/// Transport. `node<LogStore, StateMachine>` runs over `tcp_transport`; the third
/// parameter takes any `raftkit::async_transport` (see raftkit/transport.hpp), built by a
/// factory the driver calls with its receive handler: `node<S, M, my_transport>(cfg,
/// [&](auto on_receive) { return my_transport(ex, ..., std::move(on_receive)); }, store,
/// sm)`. examples/custom_transport runs a cluster over Unix-domain sockets this way.
///
/// Flow control. When the transport reports its limits (`transport_limits`), the driver
/// fits the engine to them before building it, by clamping (not refusing) the
/// configuration: `max_bytes_per_message` so the largest AppendEntries, with the encoding's
/// per-message and per-entry overhead, is one frame the transport carries, and
/// `max_inflight_messages` and `max_inflight_bytes` so a follower's whole window fits the
/// transport's per-peer queue (the engine would otherwise pipeline more than the queue
/// holds, and the queue would drop it; a queue smaller than two messages also lowers the
/// message size). `config()` shows the values in effect. Only a transport too small for
/// one message of `max_entries_per_message` empty entries, or a window of them, is a
/// set-up error (std::invalid_argument). Proposals wait for the strand in a bounded queue
/// (`node_options`): beyond it they complete with `busy` (definitely not applied).
///
/// Reads. `read(command, [consistency,] token)` answers a read-only command without the
/// log when the state machine can (`raftkit::has_query`): the engine's `read_index`
/// (thesis §6.4; on a follower it asks the leader for the index, then waits to apply it)
/// and then the state machine's `query(command)`, on the strand, between applies. The
/// consistency is `node_options::default_read_consistency` unless the call names one:
/// `linearizable` (a heartbeat round), `lease` (the leader's lease, node_config::lease_reads)
/// or `local` (this node's state as it is, no guarantee). A state machine without `query`
/// has its reads proposed through the log like any command, whatever the consistency: still
/// linearizable, at the cost of a log write. Reads share the proposals' queue and bound.
///
/// Membership (thesis chapter 4). `change_membership(changes, token)` adds, promotes and
/// removes members on the leader (basic_node::change_membership), `members(token)` reads
/// the latest configuration, and `events::config_changed` says when it changes. The driver
/// does not touch the transport's peers: a member's address is the application's to keep
/// (raftkit-kv keeps it in the member's context), and it calls `set_peer` for each member
/// and `remove_peer` for each that left. A node that joins a running cluster starts with
/// `node_config::join` and no members, and needs the members' addresses before the leader
/// adds it, or it cannot answer the leader (connections are one-way: see tcp_transport).
///
/// Ownership: the node front object owns the state; queued work keeps it alive until it has
/// run. Destroying the node stops it as `stop` does, without a completion: pending and
/// queued proposals complete with shutting_down once the strand runs (so the io_context
/// must still run then). As with any Asio object, destroy it before its io_context.
///
/// Storage: the engine moves its policies in, but `file::log_store` and the transports own
/// threads and sockets and cannot move, so the driver holds each behind a small movable
/// handle (`detail::store_handle`, `detail::transport_handle`). A log store that cannot
/// move is passed as a factory: `node(ex, cfg, id, peers, [&] { return file::log_store(dir); },
/// sm)`.
///
/// Snapshots (Raft §7). The fourth parameter is the engine's SnapshotStore (`no_snapshots`
/// by default: the log is kept whole). With a snapshot store, a `snapshottable` state
/// machine and a log store that can compact, pass the store after the state machine:
/// `node<log_store_ref<file::log_store>, my_state, tcp_transport, file::snapshot_store>(ex,
/// cfg, id, peers, make_store, sm, file::snapshot_store(dir))`. Snapshots are then *taken*
/// on the strand (the state machine's cheap point-in-time `snapshot()`) and *written* off it,
/// on `node_options::snapshot_executor` or, without one, on a worker thread the node owns,
/// so proposals keep committing while a large snapshot is written; the write's outcome comes
/// back to the strand (basic_node::set_snapshot_executor). Destroying the node waits for a
/// write running on its own worker to finish; a write on the user's executor may outlive
/// the node, so its view must own what it reads (as the snapshot contract asks anyway).
/// InstallSnapshot chunks travel in the transport's bulk lane within its queue bounds: the
/// driver also fits `max_snapshot_chunk_bytes` so a chunk is one frame within the window.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/asio/steady_clock.hpp"
#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/config.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/membership.hpp"
#include "raftkit/node.hpp"
#include "raftkit/snapshot.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/status.hpp"
#include "raftkit/transport.hpp"

namespace raftkit::asio {

/// Tuning for the driver itself (the engine's is node_config, the transport's its own).
struct node_options {
  /// Proposals accepted by `propose` and not yet handed to the engine (they wait for the
  /// strand); beyond this a proposal completes with busy. At least 1.
  std::size_t max_queued_proposals = 16384;
  /// The same queue's command bytes; a command bigger than this alone still reaches the
  /// engine (which answers too_large if it cannot be sent).
  std::size_t max_queued_bytes = 64u << 20;
  /// How `read(command, token)` is answered when the call names no consistency.
  raftkit::read_consistency default_read_consistency = raftkit::read_consistency::linearizable;
  /// Where snapshot writes run (only with snapshots on): any executor, e.g. a
  /// `boost::asio::thread_pool`'s, which must outlive the writes posted to it. Empty: one
  /// worker thread the node owns (started only when snapshots are on).
  std::optional<boost::asio::any_io_executor> snapshot_executor;
};

/// The driver's proposal queue, for metrics and tests.
struct proposal_queue_stats {
  std::size_t queued = 0;       ///< waiting now
  std::size_t max_queued = 0;   ///< the most that ever waited at once
  std::uint64_t busy = 0;       ///< proposals refused with busy because the queue was full
};

namespace detail {

/// A movable handle on a transport (which owns sockets and cannot move), so the engine
/// can hold it by value while the driver keeps it too.
template <class Transport>
struct transport_handle {
  std::shared_ptr<Transport> t;
  void send(message&& m) { t->send(std::move(m)); }
};

/// The engine's handle on a store the driver owns on the heap (file::log_store owns
/// threads and cannot move).
template <raftkit::log_store LogStore>
using store_handle = raftkit::log_store_ref<LogStore, std::unique_ptr<LogStore>>;

/// The executor a handler completes on (its associated one, else `fallback`), marked as
/// having outstanding work so its io_context keeps running while the operation is pending.
template <class Handler, class Executor>
auto tracked_executor(const Handler& h, const Executor& fallback) {
  return boost::asio::prefer(boost::asio::get_associated_executor(h, fallback),
                             boost::asio::execution::outstanding_work.tracked);
}

/// Fits `cfg`'s batching and pipelining limits to what the transport carries (see the file
/// comment): clamps them, or throws std::invalid_argument when not even one message fits.
inline void fit_to_transport(node_config& cfg, const transport_limits& l) {
  // The engine counts an entry as entry::wire_size() (payload plus a fixed part); the
  // encoding may spend a little more per entry, which adds up over a full message.
  const std::size_t engine_entry = entry{}.wire_size();
  const std::size_t extra = l.entry_overhead > engine_entry ? l.entry_overhead - engine_entry : 0;
  const std::size_t n = cfg.max_entries_per_message;
  if (extra != 0 && n > (std::numeric_limits<std::size_t>::max() - l.message_overhead) / extra)
    throw std::invalid_argument("raftkit: max_entries_per_message is too large for the transport");
  const std::size_t fixed = l.message_overhead + n * extra;  // a message's bytes beyond the engine's count
  if (l.max_message_bytes <= fixed + engine_entry)
    throw std::invalid_argument("raftkit: the transport's largest message cannot carry one AppendEntries");
  cfg.max_bytes_per_message = std::min(cfg.max_bytes_per_message, l.max_message_bytes - fixed);
  // A follower's window: up to max_inflight_messages messages, whose engine bytes stay
  // below max_inflight_bytes until the last one, which may add a whole message. A queue
  // smaller than two messages also bounds the message size, to keep some pipelining.
  cfg.max_inflight_messages = std::min(cfg.max_inflight_messages, l.max_queue_messages);
  const std::size_t m = cfg.max_inflight_messages;
  const std::size_t room = m <= l.max_queue_bytes / std::max<std::size_t>(fixed, 1) ? l.max_queue_bytes - m * fixed : 0;
  if (room < 2 * (engine_entry + 1))
    throw std::invalid_argument("raftkit: the transport's per-peer queue cannot hold one window of AppendEntries");
  cfg.max_bytes_per_message = std::min(cfg.max_bytes_per_message, room / 2);
  cfg.max_inflight_bytes = std::min(cfg.max_inflight_bytes, room - cfg.max_bytes_per_message + 1);
  // An InstallSnapshot chunk (the engine counts the first one's configuration in it) must
  // fit where an AppendEntries does, so its frame is carried and its window fits the queue.
  cfg.max_snapshot_chunk_bytes = std::min(cfg.max_snapshot_chunk_bytes, cfg.max_bytes_per_message);
}

/// What a read answers with: query()'s result when the state machine has one, else (the
/// read goes through the log) apply()'s.
template <class StateMachine>
struct read_result {
  using type = apply_result_t<StateMachine>;
};
template <raftkit::has_query StateMachine>
struct read_result<StateMachine> {
  using type = query_result_t<StateMachine>;
};

}  // namespace detail

/// Runs a Raft node over an asynchronous transport (TCP by default) on an Asio executor.
/// See the file comment.
template <raftkit::log_store LogStore, raftkit::state_machine StateMachine,
          raftkit::async_transport Transport = tcp_transport, class SnapshotStore = no_snapshots>
class node {
 public:
  using transport_type = Transport;
  using snapshot_store_type = SnapshotStore;
  /// The engine. Its transport and log store are the movable handles described in the
  /// file comment, around Transport and LogStore.
  using engine_type = basic_node<detail::transport_handle<Transport>, detail::store_handle<LogStore>,
                                 StateMachine, steady_clock, SnapshotStore>;
  /// Whether this node takes, installs and restores snapshots (see the file comment).
  static constexpr bool snapshots_enabled = engine_type::snapshots_enabled;
  /// What a proposal's completion receives besides the error code.
  using result_type = typename engine_type::result_type;
  /// What a read's completion receives besides the error code and the read index (see read).
  using read_result_type = typename detail::read_result<StateMachine>::type;
  /// The strand the engine and the transport run on.
  using executor_type = typename Transport::executor_type;
  static_assert(std::is_convertible_v<executor_type, boost::asio::any_io_executor>,
                "raftkit::asio::node: the transport's executor must be an Asio executor (a strand)");

  /// Over TCP: binds the transport on `peers.at(cfg.id)` (port 0: any free port, see
  /// `local_port`) and builds the engine; it does nothing until `start`. `topts`'
  /// `reconnect_max` and `connect_timeout` are clamped to the election timeout, so a healed
  /// link is used again within one or two election timeouts. Throws on
  /// set-up errors (invalid config, address in use).
  node(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id,
       cluster_map peers, LogStore store, StateMachine sm, tcp_options topts = {},
       node_options opts = {})
    requires std::same_as<Transport, tcp_transport> && std::move_constructible<LogStore>
      : node(std::move(ex), std::move(cfg), cluster_id, std::move(peers),
             [&]() -> LogStore { return std::move(store); }, std::move(sm), topts, opts) {}

  /// As above, for a log store that cannot move: `make_store()` returns it (a prvalue,
  /// constructed in place).
  template <class MakeStore>
    requires std::same_as<Transport, tcp_transport> && std::invocable<MakeStore&> &&
             std::same_as<std::invoke_result_t<MakeStore&>, LogStore>
  node(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id,
       cluster_map peers, MakeStore&& make_store, StateMachine sm, tcp_options topts = {},
       node_options opts = {})
      : node(node_config(cfg), tcp_factory(std::move(ex), cfg, cluster_id, std::move(peers), topts),
             std::forward<MakeStore>(make_store), std::move(sm), opts) {}

  /// Over any transport: `make_transport(receive_handler)` builds it (a prvalue); see
  /// raftkit::async_transport. Throws on set-up errors.
  template <class MakeTransport>
    requires std::invocable<MakeTransport&, typename Transport::receive_handler> &&
             std::same_as<std::invoke_result_t<MakeTransport&, typename Transport::receive_handler>, Transport> &&
             std::move_constructible<LogStore>
  node(node_config cfg, MakeTransport&& make_transport, LogStore store, StateMachine sm, node_options opts = {})
      : node(std::move(cfg), std::forward<MakeTransport>(make_transport),
             [&]() -> LogStore { return std::move(store); }, std::move(sm), opts) {}

  /// As above, for a log store that cannot move.
  template <class MakeTransport, class MakeStore>
    requires std::invocable<MakeTransport&, typename Transport::receive_handler> &&
             std::same_as<std::invoke_result_t<MakeTransport&, typename Transport::receive_handler>, Transport> &&
             std::invocable<MakeStore&> && std::same_as<std::invoke_result_t<MakeStore&>, LogStore>
  node(node_config cfg, MakeTransport&& make_transport, MakeStore&& make_store, StateMachine sm,
       node_options opts = {})
      : node(init_tag{}, std::move(cfg), make_transport, make_store, std::move(sm), SnapshotStore{}, opts) {}

  /// With a snapshot store (see the file comment), over TCP: as the constructors above.
  node(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id, cluster_map peers,
       LogStore store, StateMachine sm, SnapshotStore snaps, tcp_options topts = {}, node_options opts = {})
    requires(!std::same_as<SnapshotStore, no_snapshots>) && std::same_as<Transport, tcp_transport> &&
            std::move_constructible<LogStore>
      : node(std::move(ex), std::move(cfg), cluster_id, std::move(peers),
             [&]() -> LogStore { return std::move(store); }, std::move(sm), std::move(snaps), topts, opts) {}

  /// With a snapshot store, over TCP, for a log store that cannot move.
  template <class MakeStore>
    requires(!std::same_as<SnapshotStore, no_snapshots>) && std::same_as<Transport, tcp_transport> &&
            std::invocable<MakeStore&> && std::same_as<std::invoke_result_t<MakeStore&>, LogStore>
  node(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id, cluster_map peers,
       MakeStore&& make_store, StateMachine sm, SnapshotStore snaps, tcp_options topts = {}, node_options opts = {})
      : node(node_config(cfg), tcp_factory(std::move(ex), cfg, cluster_id, std::move(peers), topts),
             std::forward<MakeStore>(make_store), std::move(sm), std::move(snaps), opts) {}

  /// With a snapshot store, over any transport, for a log store that cannot move.
  template <class MakeTransport, class MakeStore>
    requires(!std::same_as<SnapshotStore, no_snapshots>) &&
            std::invocable<MakeTransport&, typename Transport::receive_handler> &&
            std::same_as<std::invoke_result_t<MakeTransport&, typename Transport::receive_handler>, Transport> &&
            std::invocable<MakeStore&> && std::same_as<std::invoke_result_t<MakeStore&>, LogStore>
  node(node_config cfg, MakeTransport&& make_transport, MakeStore&& make_store, StateMachine sm,
       SnapshotStore snaps, node_options opts = {})
      : node(init_tag{}, std::move(cfg), make_transport, make_store, std::move(sm), std::move(snaps), opts) {}

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops the node as `stop` does (pending and queued operations complete with
  /// shutting_down) once its strand runs.
  ~node() {
    if (impl_) boost::asio::dispatch(impl_->ex(), [s = impl_] { s->shutdown(errc::shutting_down); });
  }

  /// Begins ticking: elections, heartbeats and timeouts run from now on.
  void start() {
    boost::asio::post(impl_->ex(), [s = impl_] {
      if (s->started_ || s->closed_) return;
      s->started_ = true;
      s->after_input();
    });
  }

  /// Proposes `command`; completes with `(error_code, index_t, result_type)` (the index the
  /// command was applied at, see basic_node::completion) once it is applied on
  /// this node (see basic_node::propose: followers forward, or fail with not_leader), or
  /// with busy at once when the driver's queue is full (see node_options).
  template <class Token>
  auto propose(std::vector<std::byte> command, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, index_t, result_type)>(
        [s = impl_](auto handler, std::vector<std::byte> cmd) {
          s->enqueue(typename impl::queued{std::move(cmd), s->wrap(std::move(handler)), {}, {}});
        },
        token, std::move(command));
  }

  /// A read of `command`, read-only for the state machine, at
  /// `node_options::default_read_consistency`; see the next overload.
  template <class Token>
  auto read(std::vector<std::byte> command, Token&& token) {
    return read(std::move(command), impl_->opts_.default_read_consistency, std::forward<Token>(token));
  }

  /// A read of `command` at `consistency` (see the file comment); completes with
  /// `(error_code, index_t, read_result_type)`: the index this node had applied when the
  /// state machine's `query(command)` answered, and its answer. With a state machine that
  /// has no `query`, the read is proposed through the log (any consistency): then the
  /// completion is a proposal's. A read changes nothing, so on any error (not_leader,
  /// busy, timeout, leadership_lost, not_supported for a lease read without
  /// node_config::lease_reads, transferring, stopped, shutting_down) it may be retried;
  /// a failed read never returns a value.
  template <class Token>
  auto read(std::vector<std::byte> command, read_consistency consistency, Token&& token) {
    if constexpr (!has_query<StateMachine>) {
      (void)consistency;  // through the log, every read is linearizable
      return propose(std::move(command), std::forward<Token>(token));
    } else {
      return boost::asio::async_initiate<Token, void(std::error_code, index_t, read_result_type)>(
          [s = impl_, consistency](auto handler, std::vector<std::byte> cmd) {
            s->enqueue(typename impl::queued{std::move(cmd), {}, s->wrap(std::move(handler)), consistency});
          },
          token, std::move(command));
    }
  }

  /// Hands leadership to `to`, or with `to = raftkit::any_node` to the most up-to-date
  /// follower (basic_node::transfer_leadership, thesis §3.10); completes with
  /// `(error_code)`: empty once this node sees the target lead; timeout after an election
  /// timeout without that (this node leads on); not_leader, unknown_member or
  /// transferring (one at a time) at once; leadership_lost when another node took over;
  /// stopped after stop. Proposals meanwhile fail with transferring (not applied).
  template <class Token>
  auto transfer_leadership(node_id to, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [s = impl_, to](auto handler) {
          boost::asio::post(s->ex(), [s, to, done = s->wrap(std::move(handler))]() mutable {
            s->engine_->transfer_leadership(to, std::move(done));
            s->after_input();
          });
        },
        token);
  }

  /// Changes the cluster's membership (basic_node::change_membership; thesis chapter 4):
  /// `member_change::add_voter`, `add_learner`, `promote` or `remove`, on the leader only.
  /// A new voter joins as a learner, is caught up in rounds, then the configuration goes
  /// through joint consensus to C_new. Completes with `(error_code, index_t)`: the index of
  /// the final configuration entry once C_new commits; not_leader at once on a follower,
  /// membership_change_in_progress (one at a time), busy (a new leader: retry),
  /// invalid_membership_change, catch_up_failed (the learner stays a learner),
  /// transferring, stopped: none applied; leadership_lost or shutting_down: outcome unknown
  /// (see raftkit::may_have_applied; read `members` to learn it). The transport's peers are
  /// not changed: the caller adds and removes them (set_peer, remove_peer) from the members'
  /// contexts, here and on every other node (see `members`).
  template <class Token>
  auto change_membership(std::vector<member_change> changes, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, index_t)>(
        [s = impl_](auto handler, std::vector<member_change> changes) {
          boost::asio::post(s->ex(), [s, changes = std::move(changes), done = s->wrap(std::move(handler))]() mutable {
            s->engine_->change_membership(std::move(changes), std::move(done));
            s->after_input();
          });
        },
        token, std::move(changes));
  }

  /// The node's status, taken on the strand: completes with `(node_status)`.
  template <class Token>
  auto status(Token&& token) {
    return impl_->take(std::forward<Token>(token), [](const engine_type& e) { return e.status(); });
  }

  /// The latest configuration in this node's log (committed or not, thesis §4.1), taken on
  /// the strand: completes with `(membership)`: voters, learners and, while joint, the
  /// outgoing voters, each with its context, and the index of the entry that set it. A
  /// joining node (node_config::join) not yet added has none (no voters). The engine's
  /// `events::config_changed` says when it changes.
  template <class Token>
  auto members(Token&& token) {
    return impl_->take(std::forward<Token>(token), [](const engine_type& e) { return e.members(); });
  }

  /// Takes a snapshot of the state applied so far now (basic_node::snapshot_now):
  /// completes with `(error_code, index_t)` once it is durable, with its index; busy while
  /// another is being written, not_supported without snapshots.
  template <class Token>
  auto snapshot_now(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, index_t)>(
        [s = impl_](auto handler) {
          auto work = detail::tracked_executor(handler, s->ex());
          boost::asio::post(s->ex(), [s, h = std::move(handler), work = std::move(work)]() mutable {
            auto done = [h = std::move(h), work = std::move(work)](std::error_code ec, index_t i) mutable {
              boost::asio::dispatch(work, [h = std::move(h), ec, i]() mutable { std::move(h)(ec, i); });
            };
            if (s->closed_) return done(errc::stopped, 0);
            s->engine_->snapshot_now(std::move(done));
          });
        },
        token);
  }

  /// Stops the node: a leader hands leadership to its most up-to-date follower (the
  /// engine's TimeoutNow, thesis §3.10), pending operations complete with shutting_down,
  /// the node stops participating, and once what it sent has left (at most `drain_limit`;
  /// at once if the transport reports no backlog) the transport closes; then completes
  /// with `()`. Idempotent.
  template <class Token>
  auto stop(Token&& token) {
    return boost::asio::async_initiate<Token, void()>(
        [s = impl_](auto handler) {
          auto work = detail::tracked_executor(handler, s->ex());
          boost::asio::post(s->ex(), [s, h = std::move(handler), work = std::move(work)]() mutable {
            s->shutdown(errc::shutting_down);
            auto done = [work = std::move(work), h = std::move(h)]() mutable {
              boost::asio::dispatch(work, std::move(h));
            };
            if (s->transport_closed_) done();
            else s->on_closed_.emplace_back(std::move(done));
          });
        },
        token);
  }

  /// The engine's configuration in effect: node_config as given, fitted to the transport
  /// (see the file comment). Callable from any thread.
  const node_config& config() const noexcept { return impl_->config_; }
  /// The engine's counters as of its last input; callable from any thread.
  node_counters counters() const {
    std::lock_guard lk(impl_->counters_mu_);
    return impl_->counters_;
  }
  /// The driver's proposal queue; callable from any thread.
  proposal_queue_stats queue_stats() const {
    std::lock_guard lk(impl_->queue_mu_);
    return {impl_->queue_.size(), impl_->max_queued_, impl_->busy_};
  }
  /// The transport, for what it offers beyond the concept (its own thread-safety rules).
  Transport& transport() const noexcept { return *impl_->transport_; }
  /// The transport's counters (if it has any); callable from any thread.
  auto transport_stats() const
    requires requires(const Transport& t) { t.stats(); }
  {
    return impl_->transport_->stats();
  }
  /// The port the transport listens on (TCP).
  std::uint16_t local_port() const
    requires requires(const Transport& t) { { t.local_port() } -> std::convertible_to<std::uint16_t>; }
  {
    return impl_->transport_->local_port();
  }
  /// The strand the node runs on.
  executor_type get_executor() const noexcept { return impl_->ex(); }

  /// Sends the engine's events (raftkit/events.hpp) to `sink`, which is called on the
  /// node's strand. Call before `start`; the sink must outlive the node.
  void set_event_sink(event_sink* sink) noexcept { impl_->engine_->set_event_sink(sink); }

  /// Calls `f(engine)` on the strand after every input the engine takes (a message, a
  /// tick, a batch of proposals, a durability notice, a snapshot written), with the engine
  /// as that input left it: for observers that time what happens step by step (raftkit-kv's
  /// commit latency and apply batches). Call before `start`; `f` must not call into the node.
  void set_step_observer(std::function<void(const engine_type&)> f) { impl_->step_observer_ = std::move(f); }

  /// Changes a peer's address (e.g. after peers bound port 0); any thread (TCP).
  void set_peer(node_id id, peer_address address)
    requires requires(Transport& t) { t.set_peer(id, std::move(address)); }
  {
    impl_->transport_->set_peer(id, std::move(address));
  }

  /// Takes a peer out of the transport (TCP): nothing more is sent to it or taken from it
  /// until `set_peer` adds it back; any thread. The engine's membership is not changed.
  void remove_peer(node_id id)
    requires requires(Transport& t) { t.remove_peer(id); }
  {
    impl_->transport_->remove_peer(id);
  }

 private:
  using completion = typename engine_type::completion;
  using read_completion = raftkit::detail::unique_function<void(std::error_code, index_t, read_result_type)>;

  struct init_tag {};
  template <class MakeTransport, class MakeStore>
  node(init_tag, node_config cfg, MakeTransport& make_transport, MakeStore& make_store, StateMachine sm,
       SnapshotStore snaps, node_options opts)
      : impl_(std::make_shared<impl>(opts)) {
    impl_->init(std::move(cfg), make_transport, std::unique_ptr<LogStore>(new LogStore(make_store())), std::move(sm),
                std::move(snaps));
  }

  static auto tcp_factory(boost::asio::any_io_executor ex, const node_config& cfg, std::uint64_t cluster_id,
                          cluster_map peers, tcp_options topts) {
    topts = fit_to_election_timeout(topts, cfg.election_timeout);
    return [ex = std::move(ex), self = cfg.id, cluster_id, peers = std::move(peers), topts](
               tcp_transport::receive_handler on_receive) mutable {
      return tcp_transport(ex, self, cluster_id, std::move(peers), std::move(on_receive), topts);
    };
  }

  struct impl : std::enable_shared_from_this<impl> {
    // Everything below is touched only on the strand, except: config_ (constant once
    // init has run), counters_ (under counters_mu_), the queue (under queue_mu_) and
    // transport_ (thread-safe).
    explicit impl(node_options o) : opts_(o) {
      if (opts_.max_queued_proposals == 0)
        throw std::invalid_argument("raftkit: node_options.max_queued_proposals must be positive");
    }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;
    /// shutdown() takes the durable handler back, but a node destroyed before its
    /// io_context ran (a start-up that failed after the node was built) never shuts down.
    /// The store's lock orders this against a handler call in progress on its thread.
    ~impl() {
      if constexpr (raftkit::detail::durable_notifying_store<LogStore>)
        if (engine_ && !closed_) engine_->log().get().set_durable_handler(nullptr);
    }

    const node_options opts_;
    std::optional<executor_type> strand_;  // the transport's executor, set by init()
    std::shared_ptr<Transport> transport_;
    node_config config_;
    std::optional<engine_type> engine_;
    // Writes snapshots when node_options names no executor. Declared after the engine so it
    // is joined (a write in progress finishes) before the state machine goes.
    std::optional<boost::asio::thread_pool> snapshot_worker_;
    std::optional<boost::asio::steady_timer> timer_;
    std::uint64_t timer_gen_ = 0;
    bool timer_armed_ = false;
    time_point armed_at_{};
    bool started_ = false;
    bool closed_ = false;            // stopped: the engine takes no more inputs
    bool transport_closed_ = false;  // and what it sent has left (or was given up)
    std::vector<raftkit::detail::unique_function<void()>> on_closed_;
    mutable std::mutex counters_mu_;
    node_counters counters_;
    std::function<void(const engine_type&)> step_observer_;  // set_step_observer
    struct queued {
      std::vector<std::byte> cmd;
      completion done;                  // a proposal's (or a read's through the log)
      read_completion read;             // or a read's answered by query() (has_query only)
      read_consistency consistency{};  // (for a read)
      void fail(errc e) {
        if (read) read(e, 0, read_result_type{});
        else done(e, 0, result_type{});
      }
    };
    mutable std::mutex queue_mu_;
    std::vector<queued> queue_;     // proposals waiting for the next drain (under queue_mu_)
    std::size_t queued_bytes_ = 0;  // their commands' bytes (under queue_mu_)
    std::size_t max_queued_ = 0;    // (under queue_mu_)
    std::uint64_t busy_ = 0;        // (under queue_mu_)
    std::vector<queued> draining_;  // the batch being proposed (strand only)
    bool drain_posted_ = false;     // under queue_mu_

    /// Longest wait between ticks, whatever next_deadline says: bounds the delay to notice
    /// a failed store that reports no progress.
    static constexpr duration max_wait = std::chrono::milliseconds(10);
    /// How long a stopping node waits for its last messages (the TimeoutNow of a
    /// leadership transfer) to be written before it closes the transport anyway.
    static constexpr duration drain_limit = std::chrono::milliseconds(200);

    const executor_type& ex() const noexcept { return *strand_; }

    /// Completes `token` with `(f(engine))`, taken on the strand: a copy of some part of the
    /// engine's state (status, members).
    template <class Token, class F>
    auto take(Token&& token, F f) {
      using value = std::decay_t<std::invoke_result_t<F&, const engine_type&>>;
      return boost::asio::async_initiate<Token, void(value)>(
          [s = this->shared_from_this(), f = std::move(f)](auto handler) mutable {
            auto work = detail::tracked_executor(handler, s->ex());
            boost::asio::post(s->ex(), [s, f = std::move(f), h = std::move(handler), work = std::move(work)]() mutable {
              value v = f(std::as_const(*s->engine_));
              boost::asio::dispatch(work, [h = std::move(h), v = std::move(v)]() mutable { std::move(h)(std::move(v)); });
            });
          },
          token);
    }

    template <class MakeTransport>
    void init(node_config cfg, MakeTransport& make_transport, std::unique_ptr<LogStore> store, StateMachine sm,
              SnapshotStore snaps) {
      std::weak_ptr<impl> weak = this->weak_from_this();
      // Messages may arrive before start(): they are dropped (Raft tolerates loss), so the
      // engine sees nothing until it runs.
      transport_ = std::shared_ptr<Transport>(new Transport(make_transport(typename Transport::receive_handler(
          [weak](message&& m) {
            if (auto s = weak.lock()) s->on_receive(std::move(m));
          }))));
      try {
        strand_.emplace(transport_->get_executor());
        timer_.emplace(ex());
        if constexpr (transport_with_limits<Transport>) detail::fit_to_transport(cfg, transport_->limits());
        config_ = cfg;
        engine_.emplace(std::move(cfg), detail::transport_handle<Transport>{transport_},
                        detail::store_handle<LogStore>(std::move(store)), std::move(sm), steady_clock{},
                        std::move(snaps));
        if constexpr (raftkit::detail::durable_notifying_store<LogStore>) {
          // Called on the store's own thread: hop onto the strand. It holds only a weak
          // reference, so the store's thread never destroys the node (and joins itself).
          // Installed once the engine holds the store, so ~impl can always take it back:
          // a store lent through log_store_ref outlives the node, and a handler left in it
          // would post to (and at the store's end destroy) a strand of a dead io_context.
          engine_->log().get().set_durable_handler([weak, ex = ex()](index_t) {
            boost::asio::post(ex, [weak] {
              if (auto s = weak.lock()) {
                if (!s->started_ || s->closed_) return;
                s->engine_->notify_durable();
                s->after_input();
              }
            });
          });
        }
        if constexpr (snapshots_enabled) start_snapshot_executor();
      } catch (...) {
        transport_->close();
        throw;
      }
    }

    /// Hands the engine's snapshot writes to the executor (see the file comment). A write
    /// holds only a weak reference, so it never keeps the node alive, and a node stopped
    /// meanwhile ignores its outcome.
    void start_snapshot_executor() {
      boost::asio::any_io_executor worker;
      if (opts_.snapshot_executor) {
        worker = *opts_.snapshot_executor;
      } else {
        snapshot_worker_.emplace(1);
        worker = snapshot_worker_->get_executor();
      }
      std::weak_ptr<impl> weak = this->weak_from_this();
      engine_->set_snapshot_executor([weak, worker, strand = ex()](std::uint64_t id, typename engine_type::snapshot_job job) {
        boost::asio::post(worker, [weak, strand, id, job = std::move(job)]() mutable {
          const std::error_code ec = job();
          job = nullptr;  // the view and the sink go here, off the strand
          boost::asio::post(strand, [weak, id, ec] {
            if (auto s = weak.lock()) {
              if (s->closed_) return;
              s->engine_->snapshot_written(id, ec);
              s->after_input();
            }
          });
        });
      });
    }

    /// Queues a proposal; the first one queued posts a drain. Proposals that pile up
    /// while the strand is busy are proposed together in one engine batch(): one log
    /// write and one AppendEntries per follower for all of them. A full queue answers
    /// busy, from the strand (never inside the initiating call).
    void enqueue(queued q) {
      bool post_drain = false;
      bool full = false;
      {
        std::lock_guard lk(queue_mu_);
        full = !queue_.empty() && (queue_.size() >= opts_.max_queued_proposals ||
                                   queued_bytes_ + q.cmd.size() > opts_.max_queued_bytes);
        if (full) {
          ++busy_;
        } else {
          queued_bytes_ += q.cmd.size();
          queue_.push_back(std::move(q));
          max_queued_ = std::max(max_queued_, queue_.size());
          post_drain = !std::exchange(drain_posted_, true);
        }
      }
      if (full) {
        boost::asio::post(ex(), [q = std::move(q)]() mutable { q.fail(errc::busy); });
        return;
      }
      if (post_drain) boost::asio::post(ex(), [s = this->shared_from_this()] { s->drain(); });
    }

    void drain() {
      {
        std::lock_guard lk(queue_mu_);
        draining_.swap(queue_);
        queued_bytes_ = 0;
        drain_posted_ = false;
      }
      engine_->batch([&] {
        for (auto& q : draining_) {
          if constexpr (has_query<StateMachine>) {
            if (q.read) {
              start_read(q);
              continue;
            }
          }
          engine_->propose(std::span<const std::byte>(q.cmd), std::move(q.done));
        }
      });
      draining_.clear();
      after_input();
    }

    /// Asks the engine for a read index; once this node has applied up to it (the engine
    /// completes the read then, on the strand, between applies) the state machine answers.
    void start_read(queued& q) {
      engine_->read_index(
          [this, cmd = std::move(q.cmd), done = std::move(q.read)](std::error_code ec, index_t at) mutable {
            if (ec) return done(ec, 0, read_result_type{});
            const StateMachine& sm = engine_->state_machine();
            done(ec, at, sm.query(std::span<const std::byte>(cmd)));
          },
          q.consistency);
    }

    void on_receive(message&& m) {
      if (!started_ || closed_) return;
      engine_->receive(std::move(m));
      after_input();
    }

    /// Wraps a completion handler so the engine can call it on the strand: the result is
    /// dispatched to the handler's associated executor, which is kept busy meanwhile.
    /// Any signature: a proposal's, a read's, a transfer's.
    template <class Handler>
    auto wrap(Handler handler) {
      auto work = detail::tracked_executor(handler, ex());
      return [h = std::move(handler), work = std::move(work)](auto... args) mutable {
        boost::asio::dispatch(work, [h = std::move(h), ... args = std::move(args)]() mutable {
          std::move(h)(std::move(args)...);
        });
      };
    }

    /// After every input: publish counters, stop on a store failure, re-arm the timer.
    void after_input() {
      {
        std::lock_guard lk(counters_mu_);
        counters_ = engine_->counters();
      }
      if (step_observer_) step_observer_(*engine_);
      if (closed_) return;
      if (engine_->error()) return shutdown(engine_->error());  // e.g. io_error: node halted
      if (!started_) return;
      const time_point now = engine_->clock().now();
      const time_point t = std::min(engine_->next_deadline(), now + max_wait);
      if (timer_armed_ && t >= armed_at_) return;
      arm(t);
    }

    void arm(time_point t) {
      timer_armed_ = true;
      armed_at_ = t;
      const std::uint64_t gen = ++timer_gen_;
      timer_->expires_at(std::chrono::steady_clock::time_point(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch())));
      timer_->async_wait([s = this->shared_from_this(), gen](const boost::system::error_code&) {
        // A re-arm supersedes this wait even when it had already fired.
        if (gen != s->timer_gen_ || s->closed_) return;
        s->timer_armed_ = false;
        s->engine_->tick();
        s->after_input();
      });
    }

    /// Stops the engine (pending operations fail with `why`) and the timer, then closes
    /// the transport once it has written or dropped every message the engine gave it.
    void shutdown(std::error_code why) {
      if (closed_) return;
      closed_ = true;
      if constexpr (raftkit::detail::durable_notifying_store<LogStore>) engine_->log().get().set_durable_handler(nullptr);
      // stop() hands leadership over and fails everything pending with shutting_down; a
      // store failure already halted the engine with that failure's code.
      if (why == make_error_code(errc::shutting_down)) engine_->stop();
      {
        std::lock_guard lk(counters_mu_);
        counters_ = engine_->counters();
      }
      ++timer_gen_;
      timer_->cancel();
      drain(engine_->clock().now() + drain_limit);
    }

    void drain(time_point until) {
      bool flushed = true;
      if constexpr (transport_with_backlog<Transport>) flushed = transport_->backlog() == 0;
      if (flushed || engine_->clock().now() >= until) return close_transport();
      timer_->expires_after(std::chrono::milliseconds(1));
      timer_->async_wait([s = this->shared_from_this(), until](const boost::system::error_code&) {
        s->drain(until);
      });
    }

    void close_transport() {
      if (transport_closed_) return;
      transport_closed_ = true;
      transport_->close();
      auto waiting = std::move(on_closed_);
      for (auto& f : waiting) f();
    }
  };

  std::shared_ptr<impl> impl_;
};

}  // namespace raftkit::asio
