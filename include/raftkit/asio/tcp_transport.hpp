#pragma once
/// \file raftkit::asio::tcp_transport: the transport policy over TCP with Boost.Asio, and
/// basic_tcp_transport, the same connection code over a security layer of one's choice.
///
/// Each node listens on its own address from the cluster map and opens one outbound
/// connection per peer, lazily, on the first message to it. Connections are one-way:
/// a node's messages to B travel on its outbound connection to B, B's messages to it on
/// B's outbound connection. Every connection starts with a handshake in both directions
/// (node ids and cluster id); only then do messages flow.
///
/// Raft tolerates loss, so this transport never blocks and never grows without bound: a
/// full send queue drops the newest message, a broken connection loses what was being
/// written, and a frame that is malformed, oversized, foreign or undecodable closes its
/// connection. All of these are counted in `stats()`; none reaches the receive handler.
///
/// Two lanes per peer. Messages without entries or snapshot data (votes and their replies,
/// heartbeats, append and install-snapshot replies, timeout_now, forward replies) are
/// *control*: they decide elections, so they have their own bounded queue, which bulk data
/// cannot fill, and each write starts with all of them. Bulk messages (AppendEntries with
/// entries, forwarded proposals, InstallSnapshot chunks) wait
/// in the bulk queue (`max_queue_bytes`, `max_queue_messages`) and leave in writes of about
/// `max_write_bytes`, so a control message waits at most for one such write (or one frame,
/// if a frame is bigger) however much bulk data is queued. `limits()` reports what the
/// bulk queue and one frame hold, so a driver can fit the engine's window to it.
///
/// Dead connections. A write that does not complete within `write_timeout` closes its
/// connection and the link reconnects (with backoff); on Linux the same bound is set as
/// TCP_USER_TIMEOUT, so data the peer never acknowledges also closes it. TCP keepalive
/// (`keepalive_*`) finds idle connections whose peer vanished. Together they replace a
/// connection stuck across a silent partition in seconds, not after TCP's retransmission
/// backoff (minutes). The accept loop backs off (10 ms doubling to 1 s) on errors such as
/// EMFILE instead of spinning, and a handshake header is checked against the handshake's
/// real size before anything is read for it.
///
/// Threading: all state lives on one strand. The receive handler runs on that strand and
/// must not throw (an exception leaves `io_context::run` and stalls that connection).
/// `send`, `set_peer` and `close` may be called from any thread: on the strand they act at
/// once, elsewhere they post to it. As with any Asio object, destroy the transport before
/// its io_context; pending completions keep the internals alive until they have run.
///
/// Security layer. `basic_tcp_transport<Security>` runs every connection on
/// `Security::stream_type` and lets the policy check the peer beyond raftkit's handshake
/// (see `detail::plain_security` for what a policy provides). `tcp_transport` is plain TCP;
/// raftkit/asio/tls_transport.hpp adds mutual TLS. This header names no TLS type, so a
/// program that does not include that one neither compiles nor links OpenSSL. Every
/// handshake refused, by either layer, is counted by its `refusal` in `stats()`.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raftkit/asio/frame_limits.hpp"
#include "raftkit/message.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/wire.hpp"

namespace raftkit::asio {

/// Where a node listens: a host name or address and a TCP port.
struct peer_address {
  std::string host;
  std::uint16_t port = 0;  ///< 0 for this node's own entry: bind any free port
};

/// The static cluster: every member's id and address, this node included.
using cluster_map = std::map<node_id, peer_address>;

/// Tuning for tcp_transport. The defaults suit a LAN cluster.
struct tcp_options {
  /// Largest frame (header plus body) sent or accepted; bigger ones are dropped on send
  /// and close the connection on receive.
  std::uint32_t max_frame_size = wire::default_max_frame_size;
  /// Per-peer bulk queue bound: encoded bytes of messages with entries waiting behind
  /// the write in flight.
  std::size_t max_queue_bytes = 8u << 20;
  /// Per-peer bulk queue bound: messages with entries waiting behind the write in flight.
  std::size_t max_queue_messages = 4096;
  /// Per-peer control queue bound: messages without entries waiting (they are small; the
  /// bound matters only while a peer is unreachable).
  std::size_t max_control_messages = 1024;
  /// Bulk bytes one write carries (at least one frame): how long a control message can
  /// wait behind bulk data, against how many writes a burst takes.
  std::size_t max_write_bytes = 256u << 10;
  /// Reconnect backoff: the first retry waits about `reconnect_min`, each failure
  /// doubles it up to `reconnect_max`; each wait is jittered into [d/2, d].
  std::chrono::milliseconds reconnect_min{20};
  std::chrono::milliseconds reconnect_max{2000};
  /// Bounds connecting plus the handshake, in both directions.
  std::chrono::milliseconds connect_timeout{3000};
  /// A write that has not completed after this closes its connection (which then
  /// reconnects); also the connection's TCP_USER_TIMEOUT on Linux. Zero: no bound.
  std::chrono::milliseconds write_timeout{2000};
  /// TCP keepalive on every connection: the first probe after `keepalive_idle` of
  /// silence, then one every `keepalive_interval`; `keepalive_count` unanswered probes
  /// close it. A zero idle time turns keepalive off.
  std::chrono::seconds keepalive_idle{1};
  std::chrono::seconds keepalive_interval{1};
  int keepalive_count = 3;
  /// After a failed accept (EMFILE, ENFILE, ...) the next waits `accept_backoff_min`,
  /// doubling per consecutive failure up to `accept_backoff_max`.
  std::chrono::milliseconds accept_backoff_min{10};
  std::chrono::milliseconds accept_backoff_max{1000};
  /// Seeds the backoff jitter (mixed with the node id), so runs are repeatable.
  std::uint64_t seed = 1;
};

/// `o` fitted to a Raft node with `election_timeout`: a link retries at least once per
/// election timeout and gives up on an attempt after one, so once a partition heals a peer
/// is reached again within one or two election timeouts rather than after a long backoff
/// or a handshake hung across the partition. The Asio driver applies it to the transports
/// it builds; a factory for another transport of this family should too.
template <class Rep, class Period>
tcp_options fit_to_election_timeout(tcp_options o, std::chrono::duration<Rep, Period> election_timeout) {
  const auto t = std::max(std::chrono::milliseconds(1),
                          std::chrono::duration_cast<std::chrono::milliseconds>(election_timeout));
  o.reconnect_max = std::min(o.reconnect_max, t);
  o.reconnect_min = std::min(o.reconnect_min, o.reconnect_max);
  o.connect_timeout = std::min(o.connect_timeout, t);
  return o;
}

/// Why a transport refused a peer's handshake; `tcp_stats::refusals` counts each.
enum class refusal : std::uint8_t {
  foreign_cluster,   ///< the peer's handshake names another cluster id
  unknown_node,      ///< an inbound handshake names a node id not in our map, or is not addressed to us
  wrong_node,        ///< the node we dialled answered as another id
  unexpected_tls,    ///< plaintext transport: the peer opened with a TLS ClientHello (it has TLS and we do not)
  plaintext,         ///< TLS: the peer did not open with a TLS handshake (it has no TLS)
  untrusted,         ///< TLS: the peer's certificate does not chain to a CA we trust (a foreign CA, self-signed, a bad signature)
  expired,           ///< TLS: the peer's certificate is outside its validity period (expired or not yet valid)
  no_certificate,    ///< TLS: the peer presented no certificate
  wrong_id,          ///< TLS: the certificate is valid but does not name the node id the peer claims (or the one we dialled) in our cluster
  tls_failed,        ///< TLS: any other handshake failure (no common protocol version or cipher, a malformed message)
};
/// How many `refusal` values there are.
inline constexpr std::size_t refusal_kinds = 10;

/// A refusal's name, for metrics and logs: "foreign_cluster", "untrusted", ...
constexpr std::string_view to_string(refusal r) noexcept {
  constexpr std::string_view names[refusal_kinds] = {"foreign_cluster", "unknown_node", "wrong_node",
                                                     "unexpected_tls",  "plaintext",    "untrusted",
                                                     "expired",         "no_certificate", "wrong_id",
                                                     "tls_failed"};
  const auto i = static_cast<std::size_t>(r);
  return i < refusal_kinds ? names[i] : std::string_view("unknown");
}

/// Counters since construction. Each is read atomically; the set is not a snapshot.
struct tcp_stats {
  std::uint64_t messages_sent = 0;      ///< message frames fully written to a socket
  std::uint64_t bytes_sent = 0;         ///< their bytes (headers included)
  std::uint64_t writes = 0;             ///< socket writes that carried them: coalescing makes this small
  std::uint64_t messages_received = 0;  ///< messages handed to the receive handler
  std::uint64_t bytes_received = 0;     ///< their frames' bytes
  std::uint64_t dropped = 0;            ///< queue full, oversized, unknown peer, closed, or lost with a broken connection
  std::uint64_t control_dropped = 0;    ///< of those, messages without entries dropped because their own queue was full
  std::uint64_t bad_frames = 0;         ///< frames that failed validation or decoding, or broke protocol
  std::uint64_t refused = 0;            ///< handshakes refused, for any reason: the sum of `refusals`
  std::array<std::uint64_t, refusal_kinds> refusals{};  ///< by reason, indexed by `refusal` (see `refused_for`)
  std::uint64_t refused_by_peer = 0;    ///< connections the peer ended with a TLS alert while or just after handshaking: it refused us
  std::uint64_t connects = 0;           ///< outbound connections that completed their handshake
  std::uint64_t connect_failures = 0;   ///< outbound attempts that failed or timed out before that
  std::uint64_t accepted = 0;           ///< inbound connections that completed their handshake
  std::uint64_t write_timeouts = 0;     ///< connections closed because a write did not complete in time (or the kernel's TCP_USER_TIMEOUT expired)
  std::uint64_t accept_errors = 0;      ///< failed accepts (each followed by a backoff wait)

  /// Handshakes refused for reason `r`.
  std::uint64_t refused_for(refusal r) const noexcept { return refusals[static_cast<std::size_t>(r)]; }
};

/// A peer and whether this node's outbound connection to it is up (handshake done, so
/// messages to it are being written), for metrics.
struct peer_connection {
  node_id id = no_node;
  bool connected = false;
};

namespace detail {
/// `min` doubled `failures` times, capped at `max` (at least 1 ms).
inline std::chrono::milliseconds doubling_delay(std::chrono::milliseconds min, std::chrono::milliseconds max,
                                                unsigned failures) {
  using ms = std::chrono::milliseconds;
  const ms::rep lo = std::max<ms::rep>(1, min.count());
  const ms::rep hi = std::max<ms::rep>(lo, max.count());
  ms::rep d = lo;
  for (unsigned i = 0; i < failures && d < hi; ++i) d *= 2;
  return ms(std::min(d, hi));
}

/// The wait before reconnect attempt `failures + 1`: `reconnect_min` doubled per
/// consecutive failure, capped at `reconnect_max`, then jittered uniformly into
/// [d/2, d] so peers that lost each other at the same moment do not retry in lockstep.
inline std::chrono::milliseconds backoff_delay(const tcp_options& opt, unsigned failures,
                                               std::mt19937_64& rng) {
  using ms = std::chrono::milliseconds;
  const ms::rep d = doubling_delay(opt.reconnect_min, opt.reconnect_max, failures).count();
  const ms::rep half = d / 2;
  return ms(half + static_cast<ms::rep>(rng() % static_cast<std::uint64_t>(d - half + 1)));
}

/// The wait before accepting again after `failures` consecutive failed accepts.
inline std::chrono::milliseconds accept_delay(const tcp_options& opt, unsigned failures) {
  return doubling_delay(opt.accept_backoff_min, opt.accept_backoff_max, failures == 0 ? 0 : failures - 1);
}

/// Whether `m` goes in the control lane: it carries no entries and no snapshot chunk (see
/// the file comment). A chunk is bulk: up to a frame of bytes that must be held to the
/// queue's byte bound and must not delay a heartbeat by more than one write.
inline bool is_control(const message& m) noexcept { return m.entries.empty() && m.data.empty(); }

/// How a security layer's handshake on one connection ended, or what a failed read or
/// write on it means.
struct handshake_verdict {
  enum class outcome : std::uint8_t {
    ok,               ///< the peer passed: raftkit's handshake may start
    failed,           ///< the connection broke (closed, reset, timed out): nobody refused anybody
    refused,          ///< we refused the peer, for `why`
    refused_by_peer,  ///< the peer refused us (a TLS alert)
  };
  outcome what = outcome::ok;
  refusal why{};
};

/// The security layer of a plain tcp_transport: none. It shows what a `Security` policy of
/// basic_tcp_transport provides (raftkit/asio/tls_transport.hpp has the other one):
/// - `stream_type`, the stream connections read and write frames on, built (in place, it
///   need not move) by `make_stream(tcp::socket)` from an unconnected socket (outbound) or
///   an accepted one (inbound); `lowest_layer()` is its socket.
/// - `async_handshake(stream, bool client, node_id expected, handler)`: secures a new
///   connection (outbound: `client`, to node `expected`) and calls `handler(verdict)` on
///   the connection's executor, before raftkit's own handshake starts.
/// - `authorize(stream, cluster, claimed)`: after an inbound raftkit handshake, whether the
///   peer may speak as node `claimed`; returns the refusal if not.
/// - `classify(error_code)`: what a failed read or write on a secured stream means (a TLS
///   alert from the peer is a refusal of us, anything else a broken connection).
/// - `contiguous_writes`: a write of many buffers goes out as one copied buffer, because the
///   stream handles only one buffer per operation (a TLS record each) where a socket
///   writes a whole sequence in one system call.
struct plain_security {
  using stream_type = boost::asio::ip::tcp::socket;
  static constexpr bool contiguous_writes = false;

  stream_type make_stream(boost::asio::ip::tcp::socket s) { return s; }

  template <class Handler>
  void async_handshake(stream_type&, bool /*client*/, node_id /*expected*/, Handler&& handler) const {
    std::forward<Handler>(handler)(handshake_verdict{});
  }

  std::optional<refusal> authorize(stream_type&, node_id /*claimed*/) const noexcept { return std::nullopt; }

  handshake_verdict classify(const boost::system::error_code&) const noexcept {
    return {handshake_verdict::outcome::failed, {}};
  }
};
}  // namespace detail

/// Raft messages over TCP, on the stream of a `Security` layer (see the file comment and
/// detail::plain_security). Use `tcp_transport` (plain) or `tls_transport` (mutual TLS).
template <class Security>
class basic_tcp_transport {
 public:
  using executor_type = boost::asio::strand<boost::asio::any_io_executor>;
  /// Receives decoded, validated messages addressed to this node, on the strand.
  using receive_handler = std::function<void(message&&)>;
  using security_type = Security;

  /// Binds and listens on `peers.at(self)` (port 0 picks a free port: see `local_port`),
  /// then accepts on `ex`. Throws std::invalid_argument if `self` is not in `peers` and
  /// boost::system::system_error if the address cannot be bound: both are set-up errors.
  basic_tcp_transport(boost::asio::any_io_executor ex, node_id self, std::uint64_t cluster_id,
                      cluster_map peers, receive_handler on_receive, tcp_options options = {},
                      Security security = {})
      : impl_(std::make_shared<impl>(std::move(ex), self, cluster_id, std::move(peers),
                                     std::move(on_receive), options, std::move(security))) {
    impl_->listen();
  }

  basic_tcp_transport(const basic_tcp_transport&) = delete;
  basic_tcp_transport& operator=(const basic_tcp_transport&) = delete;

  /// Closes everything (see `close`).
  ~basic_tcp_transport() { close(); }

  /// Queues `m` for `m.to`; never blocks. Drops (and counts) it if the peer is unknown or
  /// this node, its lane's queue is full, the frame is too large, or the transport is
  /// closed.
  void send(message&& m) {
    if (impl_->closed_) return impl::count(impl_->dropped_);
    if (impl_->strand_.running_in_this_thread()) {
      impl_->send(std::move(m));
    } else {
      boost::asio::post(impl_->strand_, [i = impl_, m = std::move(m)]() mutable { i->send(std::move(m)); });
    }
  }

  /// Sets or changes a peer's address: the next connection attempt to it uses the new
  /// one (an established connection is kept). Lets a test fill the map after binding
  /// port 0.
  void set_peer(node_id id, peer_address address) {
    boost::asio::dispatch(impl_->strand_, [i = impl_, id, a = std::move(address)]() mutable {
      if (id == i->self_) return;
      i->peers_[id] = std::move(a);
      i->set_connected(id, false, true);
    });
  }

  /// Removes a peer (a membership change took it out): what was queued for it is dropped
  /// (counted), its outbound connection and any connection it opened to us close, and a
  /// handshake from it is refused as an unknown node from then on. `set_peer` adds it
  /// back. Removing this node itself or an id not in the map does nothing.
  void remove_peer(node_id id) {
    boost::asio::dispatch(impl_->strand_, [i = impl_, id] { i->remove_peer(id); });
  }

  /// Stops accepting, closes every connection and cancels every timer. After it returns
  /// on the strand, the receive handler is never called again; from another thread it
  /// may still be running a call that had already begun. Idempotent.
  void close() {
    if (impl_->closed_.exchange(true)) return;
    boost::asio::dispatch(impl_->strand_, [i = impl_] { i->teardown(); });
  }

  /// The port this node listens on (the bound one when the map said 0).
  std::uint16_t local_port() const noexcept { return impl_->port_; }
  node_id self() const noexcept { return impl_->self_; }
  executor_type get_executor() const noexcept { return impl_->strand_; }

  /// What one frame and one peer's bulk queue hold (see raftkit::transport_limits).
  transport_limits limits() const {
    return frame_limits(impl_->opt_.max_frame_size, impl_->opt_.max_queue_bytes, impl_->opt_.max_queue_messages);
  }

  /// Messages accepted by `send` that are neither written nor dropped yet (queued in
  /// either lane, or in a write in flight). Call it on the strand.
  std::size_t backlog() const noexcept { return impl_->backlog(); }

  /// The counters; callable from any thread.
  tcp_stats stats() const noexcept { return impl_->stats(); }

  /// Every peer of the map but this node, by id, and whether its outbound connection is
  /// up; callable from any thread.
  std::vector<peer_connection> peer_connections() const { return impl_->peer_connections(); }

 protected:
  /// The security layer, for a derived transport's own calls (thread safety is the
  /// layer's to provide: the connection code calls it on the strand).
  Security& security() const noexcept { return impl_->security_; }

 private:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;
  using clock = std::chrono::steady_clock;

  struct impl;

  /// Encoded bulk frames, many to a chunk, so a write can take a bounded prefix of the
  /// queue without copying it.
  struct chunk {
    std::vector<std::byte> bytes;
    std::size_t messages = 0;
  };

  /// One outbound connection attempt and, once it handshakes, the live connection. A
  /// new attempt gets a new object, so late completions of an old socket find themselves
  /// stale instead of touching the new one.
  struct out_conn {
    // The stream is built in place: a TLS stream cannot move while Asio operations use it.
    out_conn(Security& sec, const executor_type& ex) : stream(sec.make_stream(tcp::socket(ex))), write_timer(ex) {}
    typename Security::stream_type stream;
    // The write in flight: the control frames, then whole bulk chunks.
    std::vector<std::byte> control;  ///< swapped with the link's control queue
    std::vector<chunk> chunks;
    std::vector<boost::asio::const_buffer> buffers;
    std::vector<std::byte> gathered;  ///< the write copied into one buffer (Security::contiguous_writes)
    std::size_t write_messages = 0;
    std::size_t write_bytes = 0;  ///< message frame bytes in the write (not the handshake)
    // The write deadline: one timer per connection, re-armed lazily rather than per write.
    boost::asio::steady_timer write_timer;
    bool write_timer_armed = false;
    clock::time_point write_since{};
    std::array<std::byte, wire::header_size> header{};
    std::vector<std::byte> body;
    std::array<std::byte, 1> probe{};  ///< reads nothing: watches for the peer closing
  };

  /// Everything about one peer we send to: its two queues, its connection, its backoff.
  struct peer_link {
    peer_link(const executor_type& ex, node_id id) : id(id), timer(ex), resolver(ex) {}
    node_id id;
    boost::asio::steady_timer timer;  ///< connect timeout while connecting, backoff after failures
    tcp::resolver resolver;
    std::shared_ptr<out_conn> conn;  ///< current attempt or connection; null while waiting
    bool ready = false;              ///< handshake done: frames may be written
    bool writing = false;
    std::vector<std::byte> control;  ///< encoded control frames waiting for the next write
    std::size_t control_messages = 0;
    std::deque<chunk> bulk;          ///< encoded bulk frames waiting, oldest first
    std::size_t bulk_bytes = 0;
    std::size_t bulk_messages = 0;
    std::vector<std::vector<std::byte>> spare;  ///< emptied chunk buffers, reused so steady state allocates nothing
    std::size_t spare_bytes = 0;                ///< their capacity
    unsigned failures = 0;           ///< consecutive, for the backoff exponent
    bool timer_pending = false;      ///< a backoff wait is armed: it will reconnect
    bool retired = false;            ///< the peer was removed (or the transport closed)
  };

  /// One accepted connection: handshake, then a stream of frames into a reused buffer.
  struct in_conn {
    in_conn(Security& sec, tcp::socket s, const executor_type& ex) : stream(sec.make_stream(std::move(s))), timer(ex) {}
    typename Security::stream_type stream;
    boost::asio::steady_timer timer;  ///< handshake deadline
    node_id peer = no_node;           ///< set once the handshake passes
    std::array<std::byte, wire::header_size> header{};
    wire::frame_header parsed;
    std::vector<std::byte> body;
    std::vector<std::byte> reply;
  };

  struct impl : std::enable_shared_from_this<impl> {
    impl(boost::asio::any_io_executor ex, node_id self, std::uint64_t cluster, cluster_map peers,
         receive_handler on_receive, tcp_options opt, Security security)
        : strand_(boost::asio::make_strand(std::move(ex))),
          self_(self),
          cluster_(cluster),
          peers_(std::move(peers)),
          on_receive_(std::move(on_receive)),
          opt_(opt),
          security_(std::move(security)),
          acceptor_(strand_),
          accept_timer_(strand_),
          rng_(opt.seed ^ (self * 0x9E3779B97F4A7C15ull)) {
      for (const auto& [id, a] : peers_)
        if (id != self_) connected_.emplace(id, false);
    }

    /// Spare chunk buffers kept per peer, and their total capacity: enough for steady
    /// state (reallocating and faulting in a fresh buffer for every large frame costs a
    /// fifth of the throughput with 1 MiB AppendEntries), without keeping more than half
    /// a full queue's memory after a burst.
    static constexpr std::size_t max_spare_chunks = 8;
    std::size_t max_spare_bytes() const noexcept { return opt_.max_queue_bytes / 2; }

    // --- set-up ---------------------------------------------------------------------

    void listen() {
      auto it = peers_.find(self_);
      if (it == peers_.end()) throw std::invalid_argument("raftkit: own node id missing from the cluster map");
      tcp::resolver resolver(strand_);
      const tcp::endpoint ep = *resolver.resolve(it->second.host, std::to_string(it->second.port)).begin();
      acceptor_.open(ep.protocol());
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(ep);
      acceptor_.listen();
      port_ = acceptor_.local_endpoint().port();
      it->second.port = port_;
      boost::asio::post(strand_, [self = this->shared_from_this()] { self->accept(); });
    }

    wire::decode_options decode_opts() const noexcept { return {cluster_, opt_.max_frame_size}; }

    /// No delay (Raft is latency-bound; we coalesce ourselves), keepalive, and on an
    /// outbound connection the write timeout as TCP_USER_TIMEOUT. Failures are ignored:
    /// the options tune a connection that works without them.
    template <class Socket>
    void tune(Socket& s, bool outbound) const {
      error_code ignore;
      s.set_option(tcp::no_delay(true), ignore);
      const int fd = s.native_handle();
      if (opt_.keepalive_idle.count() > 0) {
        s.set_option(boost::asio::socket_base::keep_alive(true), ignore);
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
        const int idle = static_cast<int>(opt_.keepalive_idle.count());
        const int interval = static_cast<int>(std::max<std::chrono::seconds::rep>(1, opt_.keepalive_interval.count()));
        const int probes = std::max(1, opt_.keepalive_count);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
#endif
      }
#if defined(TCP_USER_TIMEOUT)
      if (outbound && opt_.write_timeout.count() > 0) {
        const unsigned ms = static_cast<unsigned>(opt_.write_timeout.count());
        ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
      }
#else
      (void)outbound;
#endif
      (void)fd;
    }

    // --- sending --------------------------------------------------------------------

    /// Appends `m`'s frame to `out`; returns its size, or 0 (with `out` unchanged) when it
    /// cannot be encoded (bad_alloc, > 4 GiB) or exceeds the maximum frame size.
    std::size_t encode(const message& m, std::vector<std::byte>& out) const {
      const std::size_t before = out.size();
      std::size_t n = 0;
      try {
        n = wire::encode_frame(m, cluster_, out);
      } catch (...) {
        out.resize(before);
        return 0;
      }
      if (n > opt_.max_frame_size) {
        out.resize(before);
        return 0;
      }
      return n;
    }

    void send(message&& m) {
      if (closed_ || m.to == self_ || !peers_.contains(m.to)) return count(dropped_);
      auto& slot = links_[m.to];
      if (!slot) slot = std::make_shared<peer_link>(strand_, m.to);
      peer_link& l = *slot;
      if (!(detail::is_control(m) ? queue_control(l, m) : queue_bulk(l, m))) return count(dropped_);
      if (l.ready) {
        flush(slot);
      } else if (!l.conn && !l.timer_pending) {
        connect(slot);
      }
    }

    /// Control lane: bounded in messages only (a message without entries is small).
    bool queue_control(peer_link& l, const message& m) {
      if (l.control_messages >= opt_.max_control_messages) {
        count(control_dropped_);
        return false;
      }
      if (encode(m, l.control) == 0) return false;
      ++l.control_messages;
      return true;
    }

    /// Bulk lane: bounded in messages and bytes; a full queue drops the newest.
    bool queue_bulk(peer_link& l, const message& m) {
      if (l.bulk_messages >= opt_.max_queue_messages) return false;
      const bool fresh = l.bulk.empty() || l.bulk.back().bytes.size() >= opt_.max_write_bytes;
      if (fresh) {
        l.bulk.emplace_back();
        if (!l.spare.empty()) {
          l.spare_bytes -= l.spare.back().capacity();
          l.bulk.back().bytes = std::move(l.spare.back());
          l.spare.pop_back();
        }
      }
      chunk& c = l.bulk.back();
      const std::size_t before = c.bytes.size();
      const std::size_t n = encode(m, c.bytes);
      if (n == 0 || l.bulk_bytes + n > opt_.max_queue_bytes) {
        c.bytes.resize(before);
        if (fresh) {
          recycle(l, std::move(c.bytes));
          l.bulk.pop_back();
        }
        return false;
      }
      ++c.messages;
      ++l.bulk_messages;
      l.bulk_bytes += n;
      return true;
    }

    void recycle(peer_link& l, std::vector<std::byte>&& bytes) const {
      if (l.spare.size() >= max_spare_chunks || l.spare_bytes + bytes.capacity() > max_spare_bytes()) return;
      bytes.clear();
      l.spare_bytes += bytes.capacity();
      l.spare.push_back(std::move(bytes));
    }

    /// Starts a write if none is in flight: every queued control frame, then bulk chunks
    /// up to `max_write_bytes` (at least one). Frames queued meanwhile leave in the next.
    void flush(const std::shared_ptr<peer_link>& link) {
      peer_link& l = *link;
      if (!l.ready || l.writing || (l.control.empty() && l.bulk.empty())) return;
      auto c = l.conn;
      c->control.clear();
      std::swap(c->control, l.control);
      c->write_messages = std::exchange(l.control_messages, 0);
      c->write_bytes = c->control.size();
      c->chunks.clear();
      std::size_t bulk = 0;
      while (!l.bulk.empty() && (c->chunks.empty() || bulk + l.bulk.front().bytes.size() <= opt_.max_write_bytes)) {
        chunk& front = l.bulk.front();
        bulk += front.bytes.size();
        l.bulk_bytes -= front.bytes.size();
        l.bulk_messages -= front.messages;
        c->write_messages += front.messages;
        c->chunks.push_back(std::move(front));
        l.bulk.pop_front();
      }
      c->write_bytes += bulk;
      c->buffers.clear();
      if (!c->control.empty()) c->buffers.push_back(boost::asio::buffer(c->control));
      for (const chunk& ch : c->chunks) c->buffers.push_back(boost::asio::buffer(ch.bytes));
      l.writing = true;
      c->write_since = clock::now();
      watch_write(link, c);
      if constexpr (Security::contiguous_writes) {
        if (c->buffers.size() > 1) {
          c->gathered.resize(c->write_bytes);
          std::byte* at = c->gathered.data();
          for (const auto& b : c->buffers) at = std::copy_n(static_cast<const std::byte*>(b.data()), b.size(), at);
          c->buffers.assign(1, boost::asio::buffer(c->gathered));
        }
      }
      boost::asio::async_write(c->stream, c->buffers,
                               [self = this->shared_from_this(), link, c](error_code ec, std::size_t) {
                                 if (link->conn != c) return;  // an old connection's write
                                 link->writing = false;
                                 if (ec) return self->fail(link, c, self->why_failed(ec));
                                 self->messages_sent_ += c->write_messages;
                                 self->bytes_sent_ += c->write_bytes;
                                 count(self->writes_);
                                 c->write_messages = c->write_bytes = 0;
                                 // Hand the emptied buffers back so steady state allocates nothing.
                                 c->control.clear();
                                 if (link->control.empty()) std::swap(c->control, link->control);
                                 for (chunk& ch : c->chunks) self->recycle(*link, std::move(ch.bytes));
                                 c->chunks.clear();
                                 self->flush(link);
                               });
    }

    /// Arms the connection's write deadline unless it is armed already. When it fires, a
    /// write in flight for `write_timeout` closes the connection; a later write re-arms
    /// it for its own deadline.
    void watch_write(const std::shared_ptr<peer_link>& link, const std::shared_ptr<out_conn>& c) {
      if (opt_.write_timeout.count() <= 0 || c->write_timer_armed) return;
      c->write_timer_armed = true;
      c->write_timer.expires_at(c->write_since + opt_.write_timeout);
      c->write_timer.async_wait([self = this->shared_from_this(), link, c](error_code ec) {
        c->write_timer_armed = false;
        if (ec || link->conn != c || !link->writing) return;
        if (clock::now() - c->write_since >= self->opt_.write_timeout) return self->fail(link, c, &self->write_timeouts_);
        self->watch_write(link, c);
      });
    }

    // --- outbound connections -----------------------------------------------------

    void connect(const std::shared_ptr<peer_link>& link) {
      if (closed_ || link->retired) return;
      peer_link& l = *link;
      // The security layer's material now: a connection made after a reload uses the new one.
      auto c = std::make_shared<out_conn>(security_, strand_);
      l.conn = c;
      l.ready = false;
      l.timer.expires_after(opt_.connect_timeout);
      l.timer.async_wait([self = this->shared_from_this(), link, c](error_code ec) {
        if (ec || link->conn != c || link->ready) return;
        self->fail(link, c, nullptr);  // took too long to connect or to answer the handshake
      });
      const peer_address& a = peers_.at(l.id);
      error_code ec;
      const auto addr = boost::asio::ip::make_address(a.host, ec);
      if (!ec) {
        c->stream.lowest_layer().async_connect(tcp::endpoint(addr, a.port), [self = this->shared_from_this(), link, c](error_code e) {
          self->on_connected(link, c, e);
        });
        return;
      }
      l.resolver.async_resolve(
          a.host, std::to_string(a.port),
          [self = this->shared_from_this(), link, c](error_code e, tcp::resolver::results_type results) {
            if (link->conn != c) return;
            if (e) return self->fail(link, c, nullptr);
            boost::asio::async_connect(c->stream.lowest_layer(), results,
                                       [self, link, c](error_code e2, const tcp::endpoint&) {
                                         self->on_connected(link, c, e2);
                                       });
          });
    }

    void on_connected(const std::shared_ptr<peer_link>& link, const std::shared_ptr<out_conn>& c,
                      error_code ec) {
      if (link->conn != c) return;
      if (ec) return fail(link, c, nullptr);
      tune(c->stream.lowest_layer(), true);
      security_.async_handshake(c->stream, true, link->id,
                                [self = this->shared_from_this(), link, c](detail::handshake_verdict v) {
                                  if (link->conn != c) return;
                                  if (v.what != detail::handshake_verdict::outcome::ok) return self->fail(link, c, self->counter(v));
                                  self->write_handshake(link, c);
                                });
    }

    void write_handshake(const std::shared_ptr<peer_link>& link, const std::shared_ptr<out_conn>& c) {
      c->control.clear();
      wire::encode_handshake({self_, link->id}, cluster_, c->control);
      boost::asio::async_write(c->stream, boost::asio::buffer(c->control),
                               [self = this->shared_from_this(), link, c](error_code e, std::size_t) {
                                 if (link->conn != c) return;
                                 if (e) return self->fail(link, c, self->why_failed(e));
                                 c->control.clear();
                                 self->read_reply(link, c);
                               });
    }

    /// Reads the peer's handshake answer: it must be the node we dialled, in our cluster.
    void read_reply(const std::shared_ptr<peer_link>& link, const std::shared_ptr<out_conn>& c) {
      boost::asio::async_read(c->stream, boost::asio::buffer(c->header),
                              [self = this->shared_from_this(), link, c](error_code ec, std::size_t) {
        if (link->conn != c) return;
        // With TLS 1.3 the peer checks our certificate after our side of the TLS handshake
        // is done, so its refusal (an alert) arrives here.
        if (ec) return self->fail(link, c, self->why_failed(ec));
        wire::frame_header h;
        if (auto e = self->check_handshake_header(h, c->header)) return self->fail(link, c, e);
        c->body.resize(h.body_length);  // wire::handshake_body_size: checked above
        boost::asio::async_read(c->stream, boost::asio::buffer(c->body),
                                [self, link, c, h](error_code ec2, std::size_t) {
          if (link->conn != c) return;
          if (ec2) return self->fail(link, c, self->why_failed(ec2));
          wire::handshake hs;
          if (wire::decode_body(h, c->body, hs)) return self->fail(link, c, &self->bad_frames_);
          if (hs.from != link->id || hs.to != self->self_) return self->fail(link, c, self->refused(refusal::wrong_node));
          self->on_ready(link, c);
        });
      });
    }

    void on_ready(const std::shared_ptr<peer_link>& link, const std::shared_ptr<out_conn>& c) {
      link->ready = true;
      set_connected(link->id, true);
      link->failures = 0;
      link->timer.cancel();
      count(connects_);
      // The peer never speaks again on this connection; a read completes only when it
      // closes (or misbehaves), which is how a dead connection is noticed while idle.
      c->stream.async_read_some(boost::asio::buffer(c->probe),
                                [self = this->shared_from_this(), link, c](error_code ec, std::size_t) {
                                  if (link->conn != c) return;
                                  self->fail(link, c, ec ? self->why_failed(ec) : &self->bad_frames_);
                                });
      flush(link);
    }

    /// What to count for a connection that failed with `ec`: the kernel's TCP_USER_TIMEOUT
    /// (data unacknowledged for write_timeout) is a write timeout too, and a TLS alert is
    /// the peer refusing us.
    std::atomic<std::uint64_t>* why_failed(error_code ec) noexcept {
      if (ec == boost::asio::error::timed_out) return &write_timeouts_;
      return counter(security_.classify(ec));
    }

    /// The counter of a refusal for `r` (the total is their sum).
    std::atomic<std::uint64_t>* refused(refusal r) noexcept { return &refusals_[static_cast<std::size_t>(r)]; }

    /// What to count for a security verdict: nothing for success or a broken connection.
    std::atomic<std::uint64_t>* counter(const detail::handshake_verdict& v) noexcept {
      switch (v.what) {
        case detail::handshake_verdict::outcome::refused: return refused(v.why);
        case detail::handshake_verdict::outcome::refused_by_peer: return &refused_by_peer_;
        default: return nullptr;
      }
    }

    /// Drops a connection (counting `why` if given) and schedules a reconnect. What was
    /// queued stays queued for the next connection; the write in flight is lost.
    void fail(const std::shared_ptr<peer_link>& link, const std::shared_ptr<out_conn>& c,
              std::atomic<std::uint64_t>* why) {
      if (link->conn != c) return;
      if (why) count(*why);
      if (!link->ready) count(connect_failures_);
      drop_connection(*link);
      if (closed_) return;
      link->timer.cancel();
      link->timer.expires_after(detail::backoff_delay(opt_, link->failures++, rng_));
      link->timer_pending = true;
      link->timer.async_wait([self = this->shared_from_this(), link](error_code ec) {
        if (ec) return;  // cancelled: closing
        link->timer_pending = false;
        if (!link->conn) self->connect(link);
      });
    }

    // --- inbound connections ------------------------------------------------------

    /// Accepts the next connection. A failed accept (EMFILE, ENFILE, ENOBUFS, an aborted
    /// connection...) is counted and followed by a backoff wait, never by an immediate
    /// retry: a persistent error must not spin the strand.
    void accept() {
      if (closed_) return;
      acceptor_.async_accept(strand_, [self = this->shared_from_this()](error_code ec, tcp::socket s) {
        if (self->closed_) return;
        if (!ec) {
          self->accept_failures_ = 0;
          self->start_inbound(std::move(s));
          return boost::asio::post(self->strand_, [self] { self->accept(); });  // post: no recursion
        }
        count(self->accept_errors_);
        self->accept_timer_.expires_after(detail::accept_delay(self->opt_, ++self->accept_failures_));
        self->accept_timer_.async_wait([self](error_code e) {
          if (!e) self->accept();
        });
      });
    }

    void start_inbound(tcp::socket s) {
      auto c = std::make_shared<in_conn>(security_, std::move(s), strand_);
      inbound_.insert(c);
      tune(c->stream.lowest_layer(), false);
      // Bounds the security handshake too: a peer that stalls in it holds nothing for long.
      c->timer.expires_after(opt_.connect_timeout);
      c->timer.async_wait([self = this->shared_from_this(), c](error_code ec) {
        if (!ec && c->peer == no_node) self->drop_inbound(c, &self->bad_frames_);  // silent or too slow
      });
      security_.async_handshake(c->stream, false, no_node, [self = this->shared_from_this(), c](detail::handshake_verdict v) {
        if (self->closed_ || !self->inbound_.contains(c)) return;
        if (v.what != detail::handshake_verdict::outcome::ok) return self->drop_inbound(c, self->counter(v));
        self->read_header(c);
      });
    }

    void read_header(const std::shared_ptr<in_conn>& c) {
      boost::asio::async_read(c->stream, boost::asio::buffer(c->header),
                              [self = this->shared_from_this(), c](error_code ec, std::size_t) {
        if (self->closed_ || !self->inbound_.contains(c)) return;
        // Closed by the peer; before the handshake, perhaps by its TLS alert refusing us.
        if (ec) return self->drop_inbound(c, c->peer == no_node ? self->counter(self->security_.classify(ec)) : nullptr);
        if (c->peer == no_node) {
          if (auto why = self->check_handshake_header(c->parsed, c->header)) return self->drop_inbound(c, why);
        } else if (wire::decode_header(c->header, self->decode_opts(), c->parsed) ||
                   c->parsed.type == wire::handshake_type) {
          return self->drop_inbound(c, &self->bad_frames_);
        }
        // Bounded by max_frame_size, or by the handshake's size before the peer is known;
        // the capacity is reused.
        c->body.resize(c->parsed.body_length);
        boost::asio::async_read(c->stream, boost::asio::buffer(c->body),
                                [self, c](error_code ec2, std::size_t) { self->on_body(c, ec2); });
      });
    }

    void on_body(const std::shared_ptr<in_conn>& c, error_code ec) {
      if (closed_ || !inbound_.contains(c)) return;
      if (ec) return drop_inbound(c, nullptr);
      if (c->peer == no_node) {
        wire::handshake hs;
        if (wire::decode_body(c->parsed, c->body, hs)) return drop_inbound(c, &bad_frames_);
        if (hs.to != self_ || hs.from == self_ || !peers_.contains(hs.from)) return drop_inbound(c, refused(refusal::unknown_node));
        // The id claimed here must be the one the security layer authenticated.
        if (auto why = security_.authorize(c->stream, hs.from)) return drop_inbound(c, refused(*why));
        c->peer = hs.from;
        c->timer.cancel();
        count(accepted_);
        wire::encode_handshake({self_, hs.from}, cluster_, c->reply);
        boost::asio::async_write(c->stream, boost::asio::buffer(c->reply),
                                 [self = this->shared_from_this(), c](error_code e, std::size_t) {
                                   if (e && !self->closed_ && self->inbound_.contains(c)) self->drop_inbound(c, nullptr);
                                 });
        return read_header(c);
      }
      message m;
      // Only the authenticated peer may speak on its connection, and only to us.
      if (wire::decode_body(c->parsed, c->body, m) || m.from != c->peer || m.to != self_)
        return drop_inbound(c, &bad_frames_);
      count(messages_received_);
      bytes_received_ += wire::header_size + c->body.size();
      if (on_receive_) on_receive_(std::move(m));
      read_header(c);  // if the handler closed us, the read's completion sees it and stops
    }

    /// Validates a handshake frame's header (its body length included: see
    /// wire::handshake). A frame that is well-formed but of another cluster is refused
    /// rather than called bad, so a misconfiguration is told apart from corruption; so is
    /// a TLS ClientHello on a plaintext transport. Returns the counter to bump, or null
    /// when it is fine.
    std::atomic<std::uint64_t>* check_handshake_header(wire::frame_header& h,
                                                        const std::array<std::byte, wire::header_size>& bytes) {
      const auto ec = wire::decode_header(bytes, decode_opts(), h);
      if (!ec) return h.type == wire::handshake_type ? nullptr : &bad_frames_;
      wire::decode_options any = decode_opts();
      any.cluster_id = wire::detail::get_le<std::uint64_t>(bytes.data() + 8);
      if (any.cluster_id != cluster_ && !wire::decode_header(bytes, any, h)) return refused(refusal::foreign_cluster);
      // A TLS record: content type 22 (handshake), protocol major version 3.
      if (bytes[0] == std::byte{0x16} && bytes[1] == std::byte{0x03}) return refused(refusal::unexpected_tls);
      return &bad_frames_;
    }

    void drop_inbound(const std::shared_ptr<in_conn>& c, std::atomic<std::uint64_t>* why) {
      if (!inbound_.contains(c)) return;  // already dropped (a late timer or write)
      if (why) count(*why);
      error_code ignore;
      c->stream.lowest_layer().close(ignore);
      c->timer.cancel();
      inbound_.erase(c);
    }

    // --- shutdown and counters ------------------------------------------------------

    void teardown() {
      error_code ignore;
      acceptor_.close(ignore);
      accept_timer_.cancel();
      for (auto& [id, link] : links_) close_link(*link);
      links_.clear();
      for (auto& c : inbound_) {
        c->stream.lowest_layer().close(ignore);
        c->timer.cancel();
      }
      inbound_.clear();
    }

    /// Closes a link's connection or attempt, if any: the write in flight is lost with it
    /// (counted as dropped); what is queued stays for the next connection.
    void drop_connection(peer_link& link) {
      if (link.writing && link.conn) dropped_ += link.conn->write_messages;
      link.writing = false;
      link.ready = false;
      set_connected(link.id, false);
      link.resolver.cancel();
      if (auto c = std::exchange(link.conn, nullptr)) {
        error_code ignore;
        c->stream.lowest_layer().close(ignore);
        c->write_timer.cancel();
      }
    }

    /// Ends a link for good: its timers, its connection and what it had queued (counted
    /// as dropped). Callbacks still pending find it retired and do nothing.
    void close_link(peer_link& link) {
      link.retired = true;
      link.timer.cancel();
      drop_connection(link);
      dropped_ += link.control_messages + link.bulk_messages;
      link.control.clear();
      link.control_messages = 0;
      link.bulk.clear();
      link.bulk_bytes = link.bulk_messages = 0;
    }

    void remove_peer(node_id id) {
      if (closed_ || id == self_ || !peers_.erase(id)) return;
      if (auto it = links_.find(id); it != links_.end()) {
        close_link(*it->second);
        links_.erase(it);
      }
      std::vector<std::shared_ptr<in_conn>> from;
      for (const auto& c : inbound_)
        if (c->peer == id) from.push_back(c);
      for (const auto& c : from) drop_inbound(c, nullptr);
      std::lock_guard lk(connected_mu_);
      connected_.erase(id);
    }

    std::size_t backlog() const noexcept {
      std::size_t n = 0;
      for (const auto& [id, l] : links_) {
        n += l->control_messages + l->bulk_messages;
        if (l->writing && l->conn) n += l->conn->write_messages;
      }
      return n;
    }

    static void count(std::atomic<std::uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

    /// Records whether `id`'s outbound connection is up (strand); `add`: a peer new to the map.
    void set_connected(node_id id, bool up, bool add = false) {
      std::lock_guard lk(connected_mu_);
      if (add) connected_.try_emplace(id, up);
      else if (auto it = connected_.find(id); it != connected_.end()) it->second = up;
    }

    std::vector<peer_connection> peer_connections() const {
      std::lock_guard lk(connected_mu_);
      std::vector<peer_connection> out;
      out.reserve(connected_.size());
      for (const auto& [id, up] : connected_) out.push_back({id, up});
      return out;
    }

    tcp_stats stats() const noexcept {
      auto r = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
      tcp_stats s;
      s.messages_sent = r(messages_sent_);
      s.bytes_sent = r(bytes_sent_);
      s.writes = r(writes_);
      s.messages_received = r(messages_received_);
      s.bytes_received = r(bytes_received_);
      s.dropped = r(dropped_);
      s.control_dropped = r(control_dropped_);
      s.bad_frames = r(bad_frames_);
      for (std::size_t i = 0; i < refusal_kinds; ++i) {
        s.refusals[i] = r(refusals_[i]);
        s.refused += s.refusals[i];
      }
      s.refused_by_peer = r(refused_by_peer_);
      s.connects = r(connects_);
      s.connect_failures = r(connect_failures_);
      s.accepted = r(accepted_);
      s.write_timeouts = r(write_timeouts_);
      s.accept_errors = r(accept_errors_);
      return s;
    }

    executor_type strand_;
    const node_id self_;
    const std::uint64_t cluster_;
    cluster_map peers_;
    receive_handler on_receive_;
    const tcp_options opt_;
    Security security_;
    tcp::acceptor acceptor_;
    boost::asio::steady_timer accept_timer_;  ///< the backoff wait after a failed accept
    unsigned accept_failures_ = 0;            ///< consecutive
    std::uint16_t port_ = 0;
    std::atomic<bool> closed_{false};
    std::mt19937_64 rng_;
    std::map<node_id, std::shared_ptr<peer_link>> links_;
    std::set<std::shared_ptr<in_conn>> inbound_;

    std::atomic<std::uint64_t> messages_sent_{0}, bytes_sent_{0}, writes_{0}, messages_received_{0},
        bytes_received_{0}, dropped_{0}, control_dropped_{0}, bad_frames_{0}, connects_{0},
        connect_failures_{0}, accepted_{0}, write_timeouts_{0}, accept_errors_{0}, refused_by_peer_{0};
    std::array<std::atomic<std::uint64_t>, refusal_kinds> refusals_{};
    mutable std::mutex connected_mu_;          // peer_connections() reads it from any thread
    std::map<node_id, bool> connected_;        // by peer: outbound connection up
  };

  std::shared_ptr<impl> impl_;
};

/// Raft messages over plain TCP.
using tcp_transport = basic_tcp_transport<detail::plain_security>;

}  // namespace raftkit::asio

static_assert(raftkit::transport<raftkit::asio::tcp_transport>);
static_assert(raftkit::async_transport<raftkit::asio::tcp_transport>);
static_assert(raftkit::transport_with_limits<raftkit::asio::tcp_transport>);
static_assert(raftkit::transport_with_backlog<raftkit::asio::tcp_transport>);
