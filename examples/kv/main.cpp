// raftkit-kv: a replicated key-value store served over HTTP/1.1.
//
//   raftkit-kv --id 1 --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//              --http 127.0.0.1:8001 --data DIR [--log file|memory] [--snapshot-every N]
//              [--peer-tls-cert F --peer-tls-key F --peer-tls-ca F] [--http-tls-cert F --http-tls-key F]
//   raftkit-kv --id 4 --join --raft 127.0.0.1:7004 --http 127.0.0.1:8004 --data DIR
//
// --cluster starts a new cluster (its initial members); --join starts a node with no
// configuration that waits for a leader to add it (POST /admin/members). Either is needed
// only the first time: DIR/kv-member.json records the node's id, the cluster's initial
// members and every member's addresses (members.hpp), and a restart takes them from there
// and the configuration from the log, so a node added at run time restarts with --id,
// --http and --data alone. A start that contradicts the record (another --id, another
// --cluster, --cluster for a node that joined, --join for an initial member) is refused
// (exit status 8). Each node keeps its transport's peers in step with the configuration.
//
// Snapshots of the map go to DIR/snapshots (file::snapshot_store; in memory with --log
// memory) every N applied entries (default 100000; 0: never), and the log is compacted
// behind them; a restart restores the newest snapshot and replays only the log after it,
// and a follower that fell behind the compacted log is sent the snapshot (InstallSnapshot).
//
// With --peer-tls-*, peers speak mutual TLS (raftkit::asio::tls_transport); each node's
// certificate names it with the URI SAN raftkit://cluster/<kv_cluster_id>/node/<id> (see
// --help). With --http-tls-*, the client API is HTTPS. SIGHUP re-reads every TLS file.
//
// Writes go through the Raft log (a follower forwards them to the leader). Reads do not:
// a GET is answered by the node it reaches, from its own state, once the engine's ReadIndex
// (one heartbeat round of the leader's, thesis §6.4) says that state is current, so any
// node answers linearizably or not at all; `?consistency=lease` uses the leader's lease
// instead of the round, `?consistency=local` answers at once with no guarantee. The HTTP handling lives in
// http_handler.hpp, the start-up rules and exit statuses in startup.hpp; this file parses
// the command line, opens the store, binds, and accepts connections.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
// Boost.JSON compiled into this program (header-only mode): no libboost_json to link.
#include <boost/json/src.hpp>

#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <variant>

#include "http_handler.hpp"
#include "kv_machine.hpp"
#include "members.hpp"
#include "raftkit/asio/node.hpp"
#include "raftkit/events.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/file/snapshot_store.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"
#include "startup.hpp"
#include "tls.hpp"

namespace {

namespace ba = boost::asio;
using tcp = ba::ip::tcp;
using kv::startup_error;

/// The command line.
struct settings {
  raftkit::node_id id = 0;
  std::string cluster;
  std::string raft;
  bool join = false;
  std::string http = "127.0.0.1:8001";
  std::string data;
  std::string log = "file";
  bool unsafe_memory_log = false;
  unsigned election_timeout_ms = 150;
  bool no_pre_vote = false;
  bool no_check_quorum = false;
  bool no_lease_reads = false;
  double clock_drift_bound = raftkit::node_config{}.clock_drift_bound;
  std::uint64_t snapshot_every = 100'000;
  std::size_t max_connections = 1024;
  kv::http_limits limits;
  std::string log_format = "text";
  std::string log_level = "info";
  kv::peer_tls_files peer_tls;
  std::string http_tls_cert, http_tls_key;
};

constexpr std::uint64_t cluster_id = 0x6b762d7261667431;  // "kv-raft1"

/// Accepts HTTP connections, at most max_connections at once, and serves each on its
/// own strand.
template <class Node>
class http_server {
 public:
  /// Over HTTPS when `tls` is set.
  http_server(kv::handler<Node>& h, std::size_t max_connections, std::shared_ptr<kv::https_context> tls)
      : handler_(h), max_connections_(max_connections), tls_(std::move(tls)) {}

  ba::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    using ba::as_tuple;
    using ba::use_awaitable;
    kv::http_counters& counters = handler_.counters();
    ba::steady_timer pause(acceptor.get_executor());
    std::chrono::milliseconds backoff{0};
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(as_tuple(use_awaitable));
      if (ec == ba::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // Out of descriptors (EMFILE, ENFILE) or buffers: the connection stays in the
        // backlog and the listener stays readable, so retrying at once would spin. Wait,
        // doubling the wait up to max_backoff while it lasts.
        ++counters.accept_errors;
        backoff = std::clamp(backoff * 2, min_backoff, max_backoff);
        pause.expires_after(backoff);
        co_await pause.async_wait(as_tuple(use_awaitable));
        continue;
      }
      backoff = std::chrono::milliseconds{0};
      const auto ex = acceptor.get_executor();
      if (counters.connections_active >= max_connections_) {
        ++counters.connections_refused;
        // Over HTTPS a 503 would cost a TLS handshake, the work the bound is there to
        // save: the connection is closed instead.
        if (!tls_) ba::co_spawn(ex, refuse(std::move(sock)), ba::detached);
        continue;
      }
      ++counters.connections_accepted;
      ++counters.connections_active;
      ba::co_spawn(ba::make_strand(ex), session(std::move(sock)), [&counters](std::exception_ptr e) {
        if (e) ++counters.session_errors;
      });
    }
  }

 private:
  static constexpr std::chrono::milliseconds min_backoff{10};
  static constexpr std::chrono::milliseconds max_backoff{1000};

  ba::awaitable<void> session(tcp::socket sock) {
    struct active {
      std::atomic<std::uint64_t>& n;
      ~active() { --n; }
    } slot{handler_.counters().connections_active};
    if (tls_) {
      kv::https_stream stream(std::move(sock), tls_->current());
      // The handshake is part of the request's arrival: bounded as a request is.
      kv::set_deadline(stream, handler_.limits().read_timeout);
      auto [ec] = co_await stream.async_handshake(ba::ssl::stream_base::server, ba::as_tuple(ba::use_awaitable));
      if (ec) {
        ++handler_.counters().tls_handshake_failures;
        co_return;
      }
      co_await kv::serve_connection(stream, handler_);
      co_return;
    }
    boost::beast::tcp_stream stream(std::move(sock));
    co_await kv::serve_connection(stream, handler_);
  }

  /// Over the bound: 503 and close at once (draining the request would hold the
  /// descriptor the bound is there to save).
  ba::awaitable<void> refuse(tcp::socket sock) {
    boost::beast::tcp_stream stream(std::move(sock));
    auto res = kv::closing_refusal(kv::http::status::service_unavailable,
                                   "too many connections (at most " + std::to_string(max_connections_) + ")");
    res.set(kv::http::field::retry_after, "1");
    stream.expires_after(handler_.limits().write_timeout);
    co_await kv::http::async_write(stream, res, ba::as_tuple(ba::use_awaitable));
    kv::shutdown_send(stream);
  }

  kv::handler<Node>& handler_;
  const std::size_t max_connections_;
  std::shared_ptr<kv::https_context> tls_;
};

/// Binds and listens on `addr`, or throws startup_error(exit_listen) naming `what`.
void listen_on(tcp::acceptor& acceptor, const raftkit::asio::peer_address& addr, const char* what) {
  try {
    tcp::resolver resolver(acceptor.get_executor());
    const tcp::endpoint ep = *resolver.resolve(addr.host, std::to_string(addr.port)).begin();
    acceptor.open(ep.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen();
  } catch (const boost::system::system_error& e) {
    throw startup_error(kv::exit_listen, std::string("cannot listen for ") + what + " on " + addr.host + ":" +
                                             std::to_string(addr.port) + ": " + e.code().message());
  }
}

/// What run() needs besides the store, checked before anything is opened.
struct plan {
  raftkit::asio::cluster_map peers;
  raftkit::asio::peer_address http;
  raftkit::node_config cfg;
  kv::http_limits limits;
  std::size_t max_connections = 0;
  std::function<raftkit::file::sync_stats()> fsync_stats;
  kv::log_format log_format = kv::log_format::text;
  kv::log_level log_level = kv::log_level::info;
  std::optional<raftkit::asio::tls_options> peer_tls;  ///< mutual TLS between peers when set
  std::shared_ptr<kv::https_context> http_tls;         ///< HTTPS when set
  kv::start_request request;                           ///< what bears on the data directory's record
  kv::node_record record;                              ///< set by settle()
  std::optional<std::filesystem::path> record_dir;     ///< where the record is kept (none with --log memory)
};

/// Takes the record (see kv::reconcile) into the plan: the transport's peers (every
/// recorded address; the configuration trims them once the node runs) and the initial
/// members, or none for a node that joined; writes the record. Throws startup_error.
void settle(plan& p, const std::optional<kv::node_record>& on_disk) {
  auto r = kv::reconcile(on_disk, p.request);
  if (auto* c = std::get_if<kv::record_conflict>(&r)) throw startup_error(kv::exit_identity, c->why);
  p.record = std::get<kv::node_record>(std::move(r));
  p.peers.clear();
  for (const auto& [id, a] : p.record.book)
    if (!a.raft.empty()) p.peers[id] = kv::parse_address(a.raft);
  p.cfg.members = p.record.initial;
  p.cfg.join = p.record.initial.empty();
  try {
    p.cfg.validate();
  } catch (const std::invalid_argument& e) {
    throw startup_error(kv::exit_usage, e.what());
  }
  if (!p.record_dir) return;
  try {
    p.record.save(*p.record_dir);
  } catch (const std::exception& e) {
    throw startup_error(kv::exit_data_dir, std::string("data directory unusable: ") + e.what());
  }
}

/// PUT /admin/peers with `body` to the raftkit-kv at `http` (host:port): "" once it
/// answered 200 or 409, else why not. Plain HTTP, bounded by `limit`.
ba::awaitable<std::string> introduce(std::string http, std::string body, std::chrono::milliseconds limit) {
  namespace beast = boost::beast;
  using ba::as_tuple;
  using ba::use_awaitable;
  const raftkit::asio::peer_address to = kv::parse_address(http);
  auto ex = co_await ba::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, eps] = co_await resolver.async_resolve(to.host, std::to_string(to.port), as_tuple(use_awaitable));
  if (rec) co_return rec.message();
  beast::tcp_stream stream(ex);
  stream.expires_after(limit);
  auto [cec, ep] = co_await stream.async_connect(eps, as_tuple(use_awaitable));
  (void)ep;
  if (cec) co_return cec.message();
  kv::request req(kv::http::verb::put, "/admin/peers", 11);
  req.set(kv::http::field::host, http);
  req.set(kv::http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  auto [wec, wn] = co_await kv::http::async_write(stream, req, as_tuple(use_awaitable));
  (void)wn;
  if (wec) co_return wec.message();
  beast::flat_buffer buf;
  kv::response res;
  auto [hec, hn] = co_await kv::http::async_read(stream, buf, res, as_tuple(use_awaitable));
  (void)hn;
  if (hec) co_return hec.message();
  if (res.result() == kv::http::status::ok || res.result() == kv::http::status::conflict) co_return std::string();
  std::string why = res.body();
  while (!why.empty() && why.back() == '\n') why.pop_back();
  co_return "it answered " + std::to_string(res.result_int()) + ": " + why;
}

/// An event sink that hands every event to the logger, and on config_changed has the
/// directory follow the node's new configuration (read once the event has returned: a sink
/// must not call into the node), never dropping the leader it last heard of.
template <class Node>
class membership_follower final : public raftkit::event_sink {
 public:
  membership_follower(raftkit::event_sink& next, ba::io_context& io, Node& node, kv::directory& dir)
      : next_(next), io_(io), node_(node), dir_(dir) {}

  void on_event(const raftkit::event& e) override {
    next_.on_event(e);
    const auto* l = e.get<raftkit::events::leader_changed>();
    if (l) leader_ = l->to;
    if (l || e.get<raftkit::events::config_changed>()) ba::post(io_, [this] { follow(); });
  }

  void follow() {
    node_.members([this](raftkit::membership m) { dir_.follow(m, leader_); });
  }

 private:
  raftkit::event_sink& next_;
  std::atomic<raftkit::node_id> leader_{raftkit::no_node};
  ba::io_context& io_;
  Node& node_;
  kv::directory& dir_;
};

/// Opens DIR/snapshots, or throws startup_error; says on stderr which snapshot files it
/// refused (a corrupt newest one is set aside and the previous one used).
raftkit::file::snapshot_store open_snapshots(const settings& s) {
  const std::filesystem::path dir = std::filesystem::path(s.data) / "snapshots";
  try {
    raftkit::file::snapshot_store snaps(dir.string());
    for (const auto& r : snaps.recovery().refused)
      std::fprintf(stderr, "raftkit-kv %llu: %s\n", static_cast<unsigned long long>(s.id), r.message().c_str());
    return snaps;
  } catch (const std::system_error& e) {
    if (e.code() == raftkit::errc::locked) throw startup_error(kv::exit_locked, std::string("data directory locked: ") + e.what());
    throw startup_error(kv::exit_data_dir, std::string("data directory unusable: ") + e.what());
  }
}

template <class Store, class Transport, class Snapshots, class MakeStore>
int run(const settings& s, plan p, MakeStore make_store, Snapshots snaps) {
  using node_type = raftkit::asio::node<Store, kv::machine, Transport, Snapshots>;
  static_assert(node_type::snapshots_enabled);
  constexpr bool peer_tls = std::is_same_v<Transport, raftkit::asio::tls_transport>;
  ba::io_context io(1);
  // Commit latency, follower lag in seconds and apply batches, timed step by step (declared
  // before the node, so it outlives every step).
  kv::replication_tracker replication(p.cfg.max_apply_batch);
  std::optional<node_type> node;
  try {
    if constexpr (peer_tls)
      node.emplace(p.cfg, raftkit::asio::tls_factory(io.get_executor(), p.cfg, cluster_id, p.peers, *p.peer_tls),
                   make_store, kv::machine{}, std::move(snaps));
    else
      node.emplace(io.get_executor(), p.cfg, cluster_id, p.peers, make_store, kv::machine{}, std::move(snaps));
  } catch (const raftkit::asio::tls_error& e) {
    throw startup_error(kv::exit_usage, std::string("peer TLS: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw startup_error(kv::exit_usage, e.what());
  } catch (const std::system_error& e) {
    // Restoring the newest snapshot failed, or the log is compacted past every snapshot.
    if (e.code() == raftkit::errc::io_error) throw startup_error(kv::exit_data_dir, std::string("data directory unusable: ") + e.what());
    throw startup_error(kv::exit_corrupt, std::string("data directory corrupt: ") + e.what());
  } catch (const boost::system::system_error& e) {
    const auto& a = p.peers.at(s.id);
    throw startup_error(kv::exit_listen, "cannot listen for Raft peers on " + a.host + ":" + std::to_string(a.port) +
                                             ": " + e.code().message());
  }

  // Declared after the node: destroyed before it, the node reports its stop to nobody.
  kv::event_logger logger(stderr, p.log_format, p.log_level);
  kv::directory members(s.id, p.record.book);
  members.set_peer = [&](raftkit::node_id id, const std::string& raft) { node->set_peer(id, kv::parse_address(raft)); };
  members.remove_peer = [&](raftkit::node_id id) { node->remove_peer(id); };
  members.save = [&](const std::map<raftkit::node_id, kv::addresses>& book) {
    if (!p.record_dir) return;
    kv::node_record r = p.record;
    r.book = book;
    try {
      r.save(*p.record_dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "raftkit-kv %llu: cannot record the members' addresses: %s\n",
                   static_cast<unsigned long long>(s.id), e.what());
    }
  };
  membership_follower<node_type> follower(logger, io, *node, members);
  node->set_event_sink(&follower);
  struct detach {
    std::optional<node_type>& n;
    ~detach() {
      if (n) n->set_event_sink(nullptr);
    }
  } detach_on_exit{node};

  tcp::acceptor acceptor(io);
  listen_on(acceptor, p.http, "HTTP");

  node->set_step_observer([&replication](const typename node_type::engine_type& e) {
    replication.observe_engine(e, kv::replication_tracker::clock::now());
  });
  kv::http_counters counters;
  kv::membership_support membership{members, [limit = p.limits.request_timeout](std::string http, std::string body) {
                                       return introduce(std::move(http), std::move(body), limit);
                                     }};
  kv::handler<node_type> handler(*node, p.limits, counters, p.fsync_stats, &replication, &membership);
  http_server<node_type> srv(handler, p.max_connections, p.http_tls);
  ba::co_spawn(io, srv.accept_loop(acceptor), ba::detached);

  ba::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    node->stop([&] { io.stop(); });
  });

  // SIGHUP: re-read the TLS files. Bad files are reported and change nothing.
  ba::signal_set hangup(io, SIGHUP);
  std::function<void()> await_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      auto reload = [&](const char* what, auto&& f) {
        try {
          f();
          std::printf("raftkit-kv %llu: reloaded the %s TLS files\n", static_cast<unsigned long long>(s.id), what);
        } catch (const std::exception& e) {
          std::printf("raftkit-kv %llu: kept the %s TLS material: %s\n", static_cast<unsigned long long>(s.id), what,
                      e.what());
        }
        std::fflush(stdout);
      };
      if constexpr (peer_tls) reload("peer", [&] { node->transport().reload(); });
      if (p.http_tls) reload("HTTPS", [&] { p.http_tls->reload(); });
      await_hangup();
    });
  };
  await_hangup();

  node->start();
  follower.follow();  // the configuration the node started with (from its log or snapshot)
  std::printf("raftkit-kv %llu: raft%s %s:%u, http%s %s:%u, data %s, at most %zu connections\n",
              static_cast<unsigned long long>(s.id), peer_tls ? " (mutual TLS)" : "", p.peers.at(s.id).host.c_str(),
              static_cast<unsigned>(node->local_port()), p.http_tls ? "s" : "", p.http.host.c_str(),
              static_cast<unsigned>(acceptor.local_endpoint().port()), s.data.c_str(), p.max_connections);
  std::fflush(stdout);
  io.run();
  return kv::exit_ok;
}

/// Checks the command line as a whole and derives the configuration, or throws
/// startup_error(exit_usage) before anything is opened.
plan make_plan(const settings& s) {
  plan p;
  if (!s.cluster.empty()) p.peers = kv::parse_cluster(s.cluster);
  if (!s.cluster.empty() && !p.peers.contains(s.id))
    throw startup_error(kv::exit_usage, "--id " + std::to_string(s.id) + " is not in --cluster");
  if (s.join && !s.cluster.empty())
    throw startup_error(kv::exit_usage, "--join starts a node with no members of its own: no --cluster with it");
  if (!s.raft.empty() && !s.cluster.empty())
    throw startup_error(kv::exit_usage, "give this node's Raft address in --cluster or in --raft, not both");
  if (!s.raft.empty()) kv::parse_address(s.raft);  // (checked now, used by settle)
  p.http = kv::parse_address(s.http);
  p.request.id = s.id;
  p.request.join = s.join;
  p.request.raft = s.raft;
  p.request.http = s.http;
  for (const auto& [id, a] : p.peers) p.request.cluster[id] = a.host + ":" + std::to_string(a.port);
  if (s.log == "memory" && p.peers.size() > 1 && !s.unsafe_memory_log)
    throw startup_error(kv::exit_usage,
                        "--log memory in a cluster of " + std::to_string(p.peers.size()) +
                            " would let a restarted member vote with an empty log and lose acknowledged "
                            "writes; use --log file, or add --unsafe-memory-log for a throw-away test");
  p.cfg.id = s.id;
  p.cfg.election_timeout = std::chrono::milliseconds(s.election_timeout_ms);
  p.cfg.heartbeat_interval = std::chrono::milliseconds(std::max(1u, s.election_timeout_ms / 5));
  p.cfg.seed = std::random_device{}();
  p.cfg.pre_vote = !s.no_pre_vote;
  p.cfg.check_quorum = !s.no_check_quorum;
  p.cfg.lease_reads = !s.no_lease_reads;
  p.cfg.clock_drift_bound = s.clock_drift_bound;
  // A snapshot every N entries; the log keeps a trailing part behind it, so a follower a
  // little behind is sent entries rather than the whole map.
  p.cfg.snapshot_interval = s.snapshot_every;
  p.cfg.snapshot_trailing_entries = std::min<std::uint64_t>(raftkit::node_config{}.snapshot_trailing_entries,
                                                            s.snapshot_every / 2);
  p.limits = s.limits;
  p.log_format = s.log_format == "json" ? kv::log_format::json : kv::log_format::text;
  p.log_level = kv::parse_log_level(s.log_level).value_or(kv::log_level::info);
  p.limits.max_command = kv::fit_command_limits(p.cfg, s.limits.max_body, raftkit::asio::tcp_options{}.max_frame_size);
  if (s.peer_tls.enabled()) p.peer_tls = s.peer_tls.options();
  if (s.http_tls_cert.empty() != s.http_tls_key.empty())
    throw startup_error(kv::exit_usage, "--http-tls-cert and --http-tls-key go together");
  if (!s.http_tls_cert.empty()) p.http_tls = std::make_shared<kv::https_context>(s.http_tls_cert, s.http_tls_key);
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) nofile.rlim_cur = RLIM_INFINITY;
  p.max_connections = kv::fit_connection_limit(s.max_connections, nofile.rlim_cur, p.peers.size());
  return p;
}

/// run() over the transport the plan asks for.
template <class Store, class MakeStore, class Snapshots>
int run_over(const settings& s, plan p, MakeStore make_store, Snapshots snaps) {
  if (p.peer_tls)
    return run<Store, raftkit::asio::tls_transport>(s, std::move(p), std::move(make_store), std::move(snaps));
  return run<Store, raftkit::asio::tcp_transport>(s, std::move(p), std::move(make_store), std::move(snaps));
}

int start(const settings& s) {
  plan p = make_plan(s);
  if (s.log == "memory") {
    // Nothing on disk: snapshots in memory too, lost with the process like the log, and no
    // record of the node (a restart begins again).
    settle(p, std::nullopt);
    return run_over<raftkit::memory::log_store>(s, std::move(p), [] { return raftkit::memory::log_store{}; },
                                                raftkit::memory::snapshot_store{});
  }
  const std::filesystem::path dir = std::filesystem::path(s.data) / "raft-log";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw startup_error(kv::exit_data_dir, "data directory unusable: cannot create " + dir.string() + ": " + ec.message());
  // The store lives here, lent to the node, so /metrics can read its fsync latency.
  std::optional<raftkit::file::log_store> store;
  try {
    // Compaction deletes whole segments: 16 MiB ones (rather than 64) keep the log's disk
    // within a few segments of the last snapshot.
    raftkit::file::options lo;
    lo.segment_size = 16u << 20;
    store.emplace(dir.string(), lo);
  } catch (const std::system_error& e) {
    if (e.code() == raftkit::errc::locked) throw startup_error(kv::exit_locked, std::string("data directory locked: ") + e.what());
    if (e.code() == raftkit::errc::corrupt_log)
      throw startup_error(kv::exit_corrupt, std::string("data directory corrupt: ") + e.what());
    throw startup_error(kv::exit_data_dir, std::string("data directory unusable: ") + e.what());
  }
  // The store holds the data directory's lock: the record is read and written under it.
  p.record_dir = std::filesystem::path(s.data);
  try {
    settle(p, kv::node_record::load(*p.record_dir));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const startup_error*>(&e)) throw;
    throw startup_error(kv::exit_corrupt, std::string("data directory corrupt: ") + e.what());
  }
  p.fsync_stats = [&store] { return store->fsync_stats(); };
  using store_ref = raftkit::log_store_ref<raftkit::file::log_store>;
  return run_over<store_ref>(s, std::move(p), [&] { return store_ref(*store); }, open_snapshots(s));
}

/// One line: CLI11's messages may span several.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  kv::http_limits& l = s.limits;
  unsigned request_timeout_ms = 2000, idle_timeout_ms = 30000, read_timeout_ms = 10000;
  CLI::App app{"raftkit-kv: a replicated key-value store over HTTP"};
  app.footer(std::string(kv::exit_status_help));
  app.add_option("--id", s.id, "this node's id")->required();
  app.add_option("--cluster", s.cluster,
                 "a new cluster's initial members, this node included: id=host:port,... (Raft addresses); "
                 "needed on the first start only (the data directory records it)");
  app.add_flag("--join", s.join,
               "start with no configuration and wait for a leader to add this node (POST /admin/members on the "
               "leader); with --raft, first start only");
  app.add_option("--raft", s.raft, "this node's Raft listen address host:port (with --join; or to move a node)");
  app.add_option("--http", s.http, "HTTP listen address host:port");
  app.add_option("--data", s.data, "data directory")->required();
  app.add_option("--log", s.log, "log store: file or memory")->check(CLI::IsMember({"file", "memory"}));
  app.add_flag("--unsafe-memory-log", s.unsafe_memory_log,
               "allow --log memory in a cluster of several members. Unsafe: a member that restarts comes back "
               "with an empty log and no record of its vote, so it can vote twice in a term and help elect a "
               "leader that lacks committed entries; acknowledged writes can be lost. For throw-away tests only");
  app.add_option("--request-timeout-ms", request_timeout_ms, "give up on a request after this long")
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--max-body", l.max_body, "largest request body, bytes (413 beyond)")->check(CLI::PositiveNumber);
  app.add_option("--max-header", l.max_header, "largest request line and header fields, bytes (431 beyond)")
      ->check(CLI::Range(std::size_t{256}, kv::largest_header_limit));
  app.add_option("--max-connections", s.max_connections,
                 "most HTTP connections open at once (503 beyond); lowered to fit RLIMIT_NOFILE")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--idle-timeout-ms", idle_timeout_ms, "close a connection with no request begun for this long")
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--read-timeout-ms", read_timeout_ms,
                 "close a connection whose request (header and body) takes longer than this to arrive, "
                 "and one whose response takes longer than this to leave")
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--election-timeout-ms", s.election_timeout_ms, "base Raft election timeout")
      ->check(CLI::Range(10u, 60000u));
  app.add_option("--log-format", s.log_format, "event log lines on stderr: text or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", s.log_level, "least severe event logged: debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_flag("--no-pre-vote", s.no_pre_vote,
               "campaign without asking for pre-votes first (a node that rejoins may then depose a healthy leader)");
  app.add_flag("--no-check-quorum", s.no_check_quorum,
               "a leader cut off from a majority goes on believing it leads (requires --no-lease-reads)");
  app.add_flag("--no-lease-reads", s.no_lease_reads, "refuse GET ?consistency=lease (400)");
  app.add_option("--clock-drift-bound", s.clock_drift_bound,
                 "the promise lease reads rest on: no member's clock runs faster than another's by more than "
                 "this factor over an election timeout; the lease lasts election timeout / this")
      ->check(CLI::Range(1.0, 10.0));
  const std::string identity = raftkit::asio::tls_identity(cluster_id, 0);
  const std::string uri = identity.substr(0, identity.size() - 1) + "<id>";
  app.add_option("--peer-tls-cert", s.peer_tls.cert,
                 "peer port over mutual TLS (1.3): this node's certificate chain (PEM), which must carry the URI "
                 "subject alternative name " + uri + "; with --peer-tls-key and --peer-tls-ca. SIGHUP re-reads the files");
  app.add_option("--peer-tls-key", s.peer_tls.key, "the private key of --peer-tls-cert (PEM, unencrypted)");
  app.add_option("--peer-tls-ca", s.peer_tls.ca, "the CA certificates (PEM) a peer's certificate must chain to");
  app.add_option("--http-tls-cert", s.http_tls_cert,
                 "serve the client API over HTTPS (TLS 1.2+) with this certificate chain (PEM); with --http-tls-key. "
                 "SIGHUP re-reads the files");
  app.add_option("--http-tls-key", s.http_tls_key, "the private key of --http-tls-cert (PEM, unencrypted)");
  app.add_option("--snapshot-every", s.snapshot_every,
                 "snapshot the map every N applied entries and compact the log behind it (0: never)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "raftkit-kv: %s (see --help)\n", one_line(e.what()).c_str());
    return kv::exit_usage;
  }
  l.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  l.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  l.read_timeout = l.write_timeout = std::chrono::milliseconds(read_timeout_ms);
  try {
    return start(s);
  } catch (const startup_error& e) {
    std::fprintf(stderr, "raftkit-kv %llu: %s\n", static_cast<unsigned long long>(s.id), one_line(e.what()).c_str());
    return e.status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftkit-kv %llu: unexpected error: %s\n", static_cast<unsigned long long>(s.id),
                 one_line(e.what()).c_str());
    return kv::exit_failure;
  }
}
