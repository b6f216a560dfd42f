#pragma once
/// \file raftkit::asio::node: the Asio driver that runs a basic_node over TCP.
///
/// The engine and its tcp_transport live on one strand: every input (a message, a timer
/// tick, a durability notice, a proposal) runs there, so the engine stays single-threaded.
/// Public calls may come from any thread; they post to the strand. Asynchronous calls take
/// an Asio completion token (a callback, `boost::asio::use_future`, `use_awaitable`...):
/// each completes once, never inside the initiating call, through the handler's
/// associated executor (the strand when it has none). The error is a std::error_code, which
/// Asio does not turn into an exception: `use_future` gives a future of
/// `std::tuple<std::error_code, index_t, result_type>` and `co_await ... use_awaitable` that tuple.
///
/// Ownership: the node front object owns the state; queued work keeps it alive until it has
/// run. Destroying the node stops it (as `stop` does, without a completion). As with any
/// Asio object, destroy it before its io_context.
///
/// Storage: the engine moves its policies in, but `file::log_store` and `tcp_transport` own
/// threads and sockets and cannot move, so the driver holds each behind a small movable
/// handle (`detail::store_handle`, `detail::transport_handle`). A log store that cannot
/// move is passed as a factory: `node(ex, cfg, id, peers, [&] { return file::log_store(dir); },
/// sm)`.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/asio/steady_clock.hpp"
#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/config.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/node.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/status.hpp"

namespace raftkit::asio {

namespace detail {

/// A movable handle on a tcp_transport (which owns sockets and cannot move), so the engine
/// can hold it by value while the driver keeps it too.
struct transport_handle {
  std::shared_ptr<tcp_transport> t;
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

}  // namespace detail

/// Runs a Raft node over TCP on an Asio executor. See the file comment.
template <raftkit::log_store LogStore, raftkit::state_machine StateMachine>
class node {
 public:
  /// The engine. Its transport and log store are the movable handles described in the
  /// file comment, around tcp_transport and LogStore.
  using engine_type = basic_node<detail::transport_handle, detail::store_handle<LogStore>,
                                 StateMachine, steady_clock>;
  /// What a proposal's completion receives besides the error code.
  using result_type = typename engine_type::result_type;
  /// The strand the engine and the transport run on.
  using executor_type = boost::asio::strand<boost::asio::any_io_executor>;

  /// Binds the transport on `peers.at(cfg.id)` (port 0: any free port, see `local_port`)
  /// and builds the engine; it does nothing until `start`. Throws on set-up errors
  /// (invalid config, address in use).
  node(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id,
       cluster_map peers, LogStore store, StateMachine sm, tcp_options topts = {})
    requires std::move_constructible<LogStore>
      : node(std::move(ex), std::move(cfg), cluster_id, std::move(peers),
             [&]() -> LogStore { return std::move(store); }, std::move(sm), topts) {}

  /// As above, for a log store that cannot move: `make_store()` returns it (a prvalue,
  /// constructed in place).
  template <class MakeStore>
    requires std::invocable<MakeStore&> &&
             std::same_as<std::invoke_result_t<MakeStore&>, LogStore>
  node(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id,
       cluster_map peers, MakeStore&& make_store, StateMachine sm, tcp_options topts = {})
      : impl_(std::make_shared<impl>(ex)) {
    impl_->init(std::move(ex), std::move(cfg), cluster_id, std::move(peers),
                std::unique_ptr<LogStore>(new LogStore(make_store())), std::move(sm), topts);
  }

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops the node (pending operations complete with shutting_down) once its strand runs.
  ~node() {
    if (impl_) boost::asio::dispatch(impl_->strand_, [s = impl_] { s->shutdown(errc::shutting_down); });
  }

  /// Begins ticking: elections, heartbeats and timeouts run from now on.
  void start() {
    boost::asio::post(impl_->strand_, [s = impl_] {
      if (s->started_ || s->closed_) return;
      s->started_ = true;
      s->after_input();
    });
  }

  /// Proposes `command`; completes with `(error_code, index_t, result_type)` (the index the
  /// command was applied at, see basic_node::completion) once it is applied on
  /// this node (see basic_node::propose: followers forward, or fail with not_leader).
  template <class Token>
  auto propose(std::vector<std::byte> command, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, index_t, result_type)>(
        [s = impl_](auto handler, std::vector<std::byte> cmd) {
          s->enqueue(std::move(cmd), s->wrap(std::move(handler)));
        },
        token, std::move(command));
  }

  /// A linearizable read: `command` is read-only for the state machine. For now it goes
  /// through the log like a proposal (ReadIndex and leases do not exist in the engine yet),
  /// which is linearizable because it is ordered with every write.
  template <class Token>
  auto read(std::vector<std::byte> command, Token&& token) {
    return propose(std::move(command), std::forward<Token>(token));
  }

  /// The node's status, taken on the strand: completes with `(node_status)`.
  template <class Token>
  auto status(Token&& token) {
    return boost::asio::async_initiate<Token, void(node_status)>(
        [s = impl_](auto handler) {
          auto work = detail::tracked_executor(handler, s->strand_);
          boost::asio::post(s->strand_, [s, h = std::move(handler), work = std::move(work)]() mutable {
            node_status st = s->engine_->status();
            boost::asio::dispatch(work, [h = std::move(h), st = std::move(st)]() mutable { std::move(h)(std::move(st)); });
          });
        },
        token);
  }

  /// Stops the node: a leader hands leadership to its most up-to-date follower (the
  /// engine's TimeoutNow, thesis §3.10), pending operations complete with shutting_down,
  /// the node stops participating, and once what it sent has left (at most `drain_limit`)
  /// the transport closes; then completes with `()`. Idempotent.
  template <class Token>
  auto stop(Token&& token) {
    return boost::asio::async_initiate<Token, void()>(
        [s = impl_](auto handler) {
          auto work = detail::tracked_executor(handler, s->strand_);
          boost::asio::post(s->strand_, [s, h = std::move(handler), work = std::move(work)]() mutable {
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

  /// The engine's counters as of its last input; callable from any thread.
  node_counters counters() const {
    std::lock_guard lk(impl_->counters_mu_);
    return impl_->counters_;
  }
  /// The transport's counters; callable from any thread.
  tcp_stats transport_stats() const { return impl_->transport_->stats(); }
  /// The port the transport listens on.
  std::uint16_t local_port() const { return impl_->transport_->local_port(); }
  /// The strand the node runs on.
  executor_type get_executor() const noexcept { return impl_->strand_; }

  /// Changes a peer's address (e.g. after peers bound port 0); any thread.
  void set_peer(node_id id, peer_address address) { impl_->transport_->set_peer(id, std::move(address)); }

 private:
  using completion = typename engine_type::completion;

  struct impl : std::enable_shared_from_this<impl> {
    // Everything below is touched only on strand_, except counters_ (under counters_mu_)
    // and transport_ (thread-safe).
    explicit impl(const boost::asio::any_io_executor& ex) : strand_(boost::asio::make_strand(ex)) {}

    executor_type strand_;  // the transport's strand once init() has run
    std::shared_ptr<tcp_transport> transport_;
    std::optional<engine_type> engine_;
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
    struct queued {
      std::vector<std::byte> cmd;
      completion done;
    };
    std::mutex queue_mu_;
    std::vector<queued> queue_;     // proposals waiting for the next drain (under queue_mu_)
    std::vector<queued> draining_;  // the batch being proposed (strand only)
    bool drain_posted_ = false;     // under queue_mu_

    /// Longest wait between ticks, whatever next_deadline says: bounds the delay to notice
    /// a failed store that reports no progress.
    static constexpr duration max_wait = std::chrono::milliseconds(10);
    /// How long a stopping node waits for its last messages (the TimeoutNow of a
    /// leadership transfer) to be written before it closes the transport anyway.
    static constexpr duration drain_limit = std::chrono::milliseconds(200);

    void init(boost::asio::any_io_executor ex, node_config cfg, std::uint64_t cluster_id,
              cluster_map peers, std::unique_ptr<LogStore> store, StateMachine sm,
              tcp_options topts) {
      const node_id self = cfg.id;
      std::weak_ptr<impl> weak = this->weak_from_this();
      // Messages may arrive before start(): they are dropped (Raft tolerates loss), so the
      // engine sees nothing until it runs.
      transport_ = std::make_shared<tcp_transport>(
          std::move(ex), self, cluster_id, std::move(peers),
          [weak](message&& m) {
            if (auto s = weak.lock()) s->on_receive(std::move(m));
          },
          topts);
      strand_ = transport_->get_executor();
      timer_.emplace(strand_);
      if constexpr (raftkit::detail::durable_notifying_store<LogStore>) {
        // Called on the store's own thread: hop onto the strand. It holds only a weak
        // reference, so the store's thread never destroys the node (and joins itself).
        store->set_durable_handler([weak, ex = strand_](index_t) {
          boost::asio::post(ex, [weak] {
            if (auto s = weak.lock()) {
              if (!s->started_ || s->closed_) return;
              s->engine_->notify_durable();
              s->after_input();
            }
          });
        });
      }
      try {
        engine_.emplace(std::move(cfg), detail::transport_handle{transport_},
                        detail::store_handle<LogStore>(std::move(store)), std::move(sm),
                        steady_clock{});
      } catch (...) {
        transport_->close();
        throw;
      }
    }

    /// Queues a proposal; the first one queued posts a drain. Proposals that pile up
    /// while the strand is busy are proposed together in one engine batch(): one log
    /// write and one AppendEntries per follower for all of them.
    void enqueue(std::vector<std::byte> cmd, completion done) {
      bool post_drain = false;
      {
        std::lock_guard lk(queue_mu_);
        queue_.push_back(queued{std::move(cmd), std::move(done)});
        post_drain = !std::exchange(drain_posted_, true);
      }
      if (post_drain) boost::asio::post(strand_, [s = this->shared_from_this()] { s->drain(); });
    }

    void drain() {
      {
        std::lock_guard lk(queue_mu_);
        draining_.swap(queue_);
        drain_posted_ = false;
      }
      engine_->batch([&] {
        for (auto& q : draining_) engine_->propose(std::span<const std::byte>(q.cmd), std::move(q.done));
      });
      draining_.clear();
      after_input();
    }

    void on_receive(message&& m) {
      if (!started_ || closed_) return;
      engine_->receive(std::move(m));
      after_input();
    }

    /// Wraps a completion handler so the engine can call it on the strand: the result is
    /// dispatched to the handler's associated executor, which is kept busy meanwhile.
    template <class Handler>
    completion wrap(Handler handler) {
      auto work = detail::tracked_executor(handler, strand_);
      return [h = std::move(handler), work = std::move(work)](std::error_code ec, index_t i, result_type r) mutable {
        boost::asio::dispatch(work, [h = std::move(h), ec, i, r = std::move(r)]() mutable {
          std::move(h)(ec, i, std::move(r));
        });
      };
    }

    /// After every input: publish counters, stop on a store failure, re-arm the timer.
    void after_input() {
      {
        std::lock_guard lk(counters_mu_);
        counters_ = engine_->counters();
      }
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
      const tcp_stats t = transport_->stats();
      const bool flushed = t.messages_sent + t.dropped >= engine_->counters().messages_sent;
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
