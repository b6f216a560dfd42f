#pragma once
/// \file custom::unix_transport: a small transport over Unix-domain stream sockets,
/// written as a user of raftkit would write one, and plugged into raftkit::asio::node.
///
/// It satisfies raftkit::async_transport (see raftkit/transport.hpp): built by a factory
/// the driver calls with its receive handler, running on one strand, delivering on it,
/// closing idempotently. It reuses raftkit's wire codec for frames and the handshake, and
/// reports `limits()` (so the driver fits the engine's window to its queue) and
/// `backlog()` (so a stopping driver lets its last messages leave).
///
/// Kept small on purpose: one FIFO queue per peer (tcp_transport also gives control
/// messages their own lane, and has write timeouts and keepalive, which a local socket
/// needs less), a fixed reconnect delay, and no counters beyond three.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "raftkit/asio/frame_limits.hpp"
#include "raftkit/message.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/wire.hpp"

namespace custom {

/// Where every member listens: a socket path per node id, this node included.
using path_map = std::map<raftkit::node_id, std::string>;

/// Raft messages over Unix-domain stream sockets; one outbound connection per peer.
class unix_transport {
 public:
  using executor_type = boost::asio::strand<boost::asio::any_io_executor>;
  using receive_handler = std::function<void(raftkit::message&&)>;

  /// Counters; each read atomically.
  struct stats_type {
    std::uint64_t sent = 0;      ///< messages written to a socket
    std::uint64_t received = 0;  ///< messages handed to the receive handler
    std::uint64_t dropped = 0;   ///< queue full, unknown peer, too large, closed, lost with a connection
  };

  /// Listens on `paths.at(self)` (a stale socket file there is removed first). Throws on
  /// set-up errors (unknown self, path not bindable).
  unix_transport(boost::asio::any_io_executor ex, raftkit::node_id self, std::uint64_t cluster_id,
                 path_map paths, receive_handler on_receive, std::size_t max_queue_bytes = 4u << 20)
      : impl_(std::make_shared<impl>(std::move(ex), self, cluster_id, std::move(paths), std::move(on_receive),
                                     max_queue_bytes)) {
    impl_->listen();
  }
  unix_transport(const unix_transport&) = delete;
  unix_transport& operator=(const unix_transport&) = delete;
  ~unix_transport() { close(); }

  /// Queues `m` for `m.to`; never blocks; drops (and counts) what cannot be queued.
  void send(raftkit::message&& m) {
    if (impl_->strand_.running_in_this_thread()) return impl_->send(std::move(m));
    boost::asio::post(impl_->strand_, [i = impl_, m = std::move(m)]() mutable { i->send(std::move(m)); });
  }

  /// Stops listening, closes every connection and timer, removes the socket file.
  void close() {
    if (impl_->closed_.exchange(true)) return;
    boost::asio::dispatch(impl_->strand_, [i = impl_] { i->teardown(); });
  }

  executor_type get_executor() const noexcept { return impl_->strand_; }
  raftkit::transport_limits limits() const {
    return raftkit::asio::frame_limits(max_frame, impl_->max_queue_bytes_, max_queue_messages);
  }
  /// Messages queued or being written; on the strand.
  std::size_t backlog() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, l] : impl_->links_) n += l->queued + l->in_flight;
    return n;
  }
  stats_type stats() const noexcept {
    return {impl_->sent_.load(), impl_->received_.load(), impl_->dropped_.load()};
  }

 private:
  using protocol = boost::asio::local::stream_protocol;
  using error_code = boost::system::error_code;
  static constexpr std::size_t max_frame = 4u << 20;
  static constexpr std::size_t max_queue_messages = 1024;
  static constexpr auto reconnect_delay = std::chrono::milliseconds(50);

  /// One peer we send to. `gen` tells a live connection's completions from a dead one's.
  struct link {
    explicit link(const executor_type& ex, raftkit::node_id peer) : id(peer), socket(ex), timer(ex) {}
    raftkit::node_id id;
    protocol::socket socket;
    boost::asio::steady_timer timer;  ///< the reconnect delay
    std::uint64_t gen = 0;
    bool connected = false, connecting = false, writing = false;
    std::vector<std::byte> queue, out;
    std::size_t queued = 0, in_flight = 0;
  };

  /// One accepted connection: a handshake, then frames.
  struct inbound {
    explicit inbound(protocol::socket s) : socket(std::move(s)) {}
    protocol::socket socket;
    raftkit::node_id peer = raftkit::no_node;
    std::array<std::byte, raftkit::wire::header_size> header{};
    raftkit::wire::frame_header parsed;
    std::vector<std::byte> body;
  };

  struct impl : std::enable_shared_from_this<impl> {
    impl(boost::asio::any_io_executor ex, raftkit::node_id self, std::uint64_t cluster, path_map paths,
         receive_handler h, std::size_t max_queue)
        : strand_(boost::asio::make_strand(std::move(ex))), self_(self), cluster_(cluster),
          paths_(std::move(paths)), on_receive_(std::move(h)), max_queue_bytes_(max_queue), acceptor_(strand_) {}

    void listen() {
      const auto it = paths_.find(self_);
      if (it == paths_.end()) throw std::invalid_argument("unix_transport: own id missing from the path map");
      ::unlink(it->second.c_str());
      acceptor_.open();
      acceptor_.bind(protocol::endpoint(it->second));
      acceptor_.listen();
      boost::asio::post(strand_, [s = shared_from_this()] { s->accept(); });
    }

    // --- sending -----------------------------------------------------------------

    void send(raftkit::message&& m) {
      if (closed_ || m.to == self_ || !paths_.contains(m.to)) return drop(1);
      auto& slot = links_[m.to];
      if (!slot) slot = std::make_shared<link>(strand_, m.to);
      link& l = *slot;
      const std::size_t before = l.queue.size();
      const std::size_t n = raftkit::wire::encode_frame(m, cluster_, l.queue);
      if (n > max_frame || l.queue.size() > max_queue_bytes_ || l.queued >= max_queue_messages) {
        l.queue.resize(before);  // drop the newest
        return drop(1);
      }
      ++l.queued;
      if (l.connected) return flush(slot);
      if (!l.connecting) connect(slot);
    }

    void flush(const std::shared_ptr<link>& lp) {
      link& l = *lp;
      if (!l.connected || l.writing || l.queue.empty()) return;
      l.out.clear();
      std::swap(l.out, l.queue);
      l.in_flight = std::exchange(l.queued, 0);
      l.writing = true;
      boost::asio::async_write(l.socket, boost::asio::buffer(l.out),
                               [s = shared_from_this(), lp, gen = l.gen](error_code ec, std::size_t) {
                                 if (gen != lp->gen) return;
                                 lp->writing = false;
                                 if (ec) return s->fail(lp);
                                 s->sent_ += std::exchange(lp->in_flight, 0);
                                 s->flush(lp);
                               });
    }

    void connect(const std::shared_ptr<link>& lp) {
      if (closed_) return;
      link& l = *lp;
      l.connecting = true;
      l.socket = protocol::socket(strand_);
      l.socket.async_connect(protocol::endpoint(paths_.at(l.id)),
                             [s = shared_from_this(), lp, gen = l.gen](error_code ec) {
                               if (gen != lp->gen) return;
                               if (ec) return s->fail(lp);
                               // Say who we are first, then the queue follows.
                               std::vector<std::byte> hello;
                               raftkit::wire::encode_handshake({s->self_, lp->id}, s->cluster_, hello);
                               hello.insert(hello.end(), lp->queue.begin(), lp->queue.end());
                               lp->queue = std::move(hello);
                               lp->connecting = false;
                               lp->connected = true;
                               s->flush(lp);
                             });
    }

    /// Drops the connection and what it was writing; reconnects after a delay if
    /// anything is waiting.
    void fail(const std::shared_ptr<link>& lp) {
      link& l = *lp;
      ++l.gen;
      drop(std::exchange(l.in_flight, 0));
      l.writing = l.connected = false;
      error_code ignore;
      l.socket.close(ignore);
      if (closed_) return;
      l.connecting = true;  // until the delay ends: sends only queue
      l.timer.expires_after(reconnect_delay);
      l.timer.async_wait([s = shared_from_this(), lp](error_code ec) {
        if (ec || s->closed_) return;
        lp->connecting = false;
        if (!lp->queue.empty()) s->connect(lp);
      });
    }

    // --- receiving ---------------------------------------------------------------

    void accept() {
      if (closed_) return;
      acceptor_.async_accept(strand_, [s = shared_from_this()](error_code ec, protocol::socket sock) {
        if (s->closed_) return;
        if (!ec) {
          auto c = std::make_shared<inbound>(std::move(sock));
          s->inbound_.insert(c);
          s->read_header(c);
          return s->accept();
        }
        // A failed accept (EMFILE...) waits, so it cannot spin.
        s->accept_timer_.expires_after(reconnect_delay);
        s->accept_timer_.async_wait([s](error_code e) {
          if (!e) s->accept();
        });
      });
    }

    void read_header(const std::shared_ptr<inbound>& c) {
      boost::asio::async_read(c->socket, boost::asio::buffer(c->header),
                              [s = shared_from_this(), c](error_code ec, std::size_t) {
        if (s->closed_ || !s->inbound_.contains(c)) return;
        // decode_header bounds the body: max_frame, or the handshake's fixed size.
        if (ec || raftkit::wire::decode_header(c->header, {s->cluster_, max_frame}, c->parsed) ||
            (c->peer == raftkit::no_node) != (c->parsed.type == raftkit::wire::handshake_type))
          return s->drop_inbound(c);
        c->body.resize(c->parsed.body_length);
        boost::asio::async_read(c->socket, boost::asio::buffer(c->body),
                                [s, c](error_code ec2, std::size_t) { s->on_body(c, ec2); });
      });
    }

    void on_body(const std::shared_ptr<inbound>& c, error_code ec) {
      if (closed_ || !inbound_.contains(c)) return;
      if (ec) return drop_inbound(c);
      if (c->peer == raftkit::no_node) {
        raftkit::wire::handshake hs;
        if (raftkit::wire::decode_body(c->parsed, c->body, hs) || hs.to != self_ || !paths_.contains(hs.from))
          return drop_inbound(c);
        c->peer = hs.from;
        return read_header(c);
      }
      raftkit::message m;
      // Only the peer that introduced itself may speak on this connection, and only to us.
      if (raftkit::wire::decode_body(c->parsed, c->body, m) || m.from != c->peer || m.to != self_)
        return drop_inbound(c);
      ++received_;
      if (on_receive_) on_receive_(std::move(m));
      read_header(c);
    }

    void drop_inbound(const std::shared_ptr<inbound>& c) {
      error_code ignore;
      c->socket.close(ignore);
      inbound_.erase(c);
    }

    // --- closing -----------------------------------------------------------------

    void teardown() {
      error_code ignore;
      acceptor_.close(ignore);
      accept_timer_.cancel();
      ::unlink(paths_.at(self_).c_str());
      for (auto& [id, l] : links_) {
        ++l->gen;
        l->socket.close(ignore);
        l->timer.cancel();
        drop(l->queued + l->in_flight);
      }
      links_.clear();
      for (auto& c : inbound_) c->socket.close(ignore);
      inbound_.clear();
    }

    void drop(std::size_t n) { dropped_ += n; }

    executor_type strand_;
    const raftkit::node_id self_;
    const std::uint64_t cluster_;
    const path_map paths_;
    receive_handler on_receive_;
    const std::size_t max_queue_bytes_;
    protocol::acceptor acceptor_;
    boost::asio::steady_timer accept_timer_{strand_};
    std::atomic<bool> closed_{false};
    std::map<raftkit::node_id, std::shared_ptr<link>> links_;
    std::set<std::shared_ptr<inbound>> inbound_;
    std::atomic<std::uint64_t> sent_{0}, received_{0}, dropped_{0};
  };

  std::shared_ptr<impl> impl_;
};

static_assert(raftkit::async_transport<unix_transport>);
static_assert(raftkit::transport_with_limits<unix_transport>);
static_assert(raftkit::transport_with_backlog<unix_transport>);

}  // namespace custom
