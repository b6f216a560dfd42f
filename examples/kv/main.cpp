// raftkit-kv: a replicated key-value store served over HTTP/1.1.
//
//   raftkit-kv --id 1 --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//              --http 127.0.0.1:8001 --data DIR [--log file|memory]
//
// Every operation, reads included, goes through the Raft log (a follower forwards it to the
// leader), so any node answers linearizably or not at all.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
// Boost.JSON compiled into this program (header-only mode): no libboost_json to link.
#include <boost/json/src.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "kv_machine.hpp"
#include "raftkit/asio/node.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/memory/log_store.hpp"

namespace {

namespace ba = boost::asio;
namespace http = boost::beast::http;
using tcp = ba::ip::tcp;
using response = http::response<http::string_body>;
using request = http::request<http::string_body>;

struct settings {
  raftkit::node_id id = 0;
  std::string cluster;
  std::string http = "127.0.0.1:8001";
  std::string data;
  std::string log = "file";
  unsigned request_timeout_ms = 2000;
  std::size_t max_body = 1 << 20;
  unsigned election_timeout_ms = 150;
  /// fdatasync latency of the file log, for /metrics (unset with --log memory).
  std::function<raftkit::file::sync_stats()> fsync_stats;
};

constexpr std::size_t max_key = 1024;
constexpr std::uint64_t cluster_id = 0x6b762d7261667431;  // "kv-raft1"

raftkit::asio::peer_address parse_address(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) throw std::invalid_argument("bad address '" + s + "' (want host:port)");
  const unsigned long port = std::stoul(s.substr(colon + 1));
  if (port > 65535) throw std::invalid_argument("bad port in '" + s + "'");
  return {s.substr(0, colon), static_cast<std::uint16_t>(port)};
}

raftkit::asio::cluster_map parse_cluster(const std::string& s) {
  raftkit::asio::cluster_map map;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("bad cluster member '" + item + "' (want id=host:port)");
    const unsigned long id = std::stoul(item.substr(0, eq));
    if (id == 0) throw std::invalid_argument("member id 0 is reserved");
    map[id] = parse_address(item.substr(eq + 1));
  }
  return map;
}

/// Percent-decodes a path segment; false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int h = hex(in[i + 1]), l = hex(in[i + 2]);
    if (h < 0 || l < 0) return false;
    out.push_back(static_cast<char>(h * 16 + l));
    i += 2;
  }
  return true;
}

response make_response(const request& req, http::status st, std::string body,
                       std::string_view type = "text/plain") {
  response res(st, req.version());
  res.set(http::field::server, "raftkit-kv");
  res.set(http::field::content_type, type);
  res.body() = std::move(body);
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

/// One server: a node, its HTTP listener, and the request handling between them.
template <class Store>
class server {
 public:
  using node_type = raftkit::asio::node<Store, kv::machine>;

  server(ba::io_context& io, const settings& s, node_type& n) : io_(io), s_(s), node_(n) {}

  ba::awaitable<void> listen(tcp::acceptor& acceptor) {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(ba::as_tuple(ba::use_awaitable));
      if (ec == ba::error::operation_aborted) co_return;
      if (ec) continue;  // e.g. too many open files: keep serving the others
      ba::co_spawn(ba::make_strand(io_), session(std::move(sock)), ba::detached);
    }
  }

 private:
  ba::awaitable<void> session(tcp::socket sock) {
    boost::beast::tcp_stream stream(std::move(sock));
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(s_.max_body);
      stream.expires_after(std::chrono::minutes(2));  // idle keep-alive connections go
      auto [ec, n] = co_await http::async_read(stream, buf, parser, ba::as_tuple(ba::use_awaitable));
      (void)n;
      if (ec == http::error::body_limit) {
        request req;
        req.version(11);
        req.keep_alive(false);
        auto res = make_response(req, http::status::payload_too_large,
                                 "body larger than " + std::to_string(s_.max_body) + " bytes\n");
        co_await http::async_write(stream, res, ba::as_tuple(ba::use_awaitable));
        // Read and discard what the client still sends (bounded in time): closing with
        // unread data would reset the connection and could lose the 413 on its way.
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.expires_after(std::chrono::seconds(2));
        std::vector<char> sink(64 * 1024);
        for (;;) {
          auto [rec, rn] = co_await stream.async_read_some(ba::buffer(sink), ba::as_tuple(ba::use_awaitable));
          (void)rn;
          if (rec) break;
        }
        co_return;
      }
      if (ec) break;  // closed, timed out, or malformed HTTP: drop the connection
      request req = parser.release();
      stream.expires_never();
      response res = co_await handle(req);
      auto [wec, wn] = co_await http::async_write(stream, res, ba::as_tuple(ba::use_awaitable));
      (void)wn;
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  ba::awaitable<response> handle(const request& req) {
    const std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/status") {
      if (req.method() != http::verb::get) co_return make_response(req, http::status::bad_request, "use GET\n");
      co_return co_await status(req);
    }
    if (path == "/metrics") {
      if (req.method() != http::verb::get) co_return make_response(req, http::status::bad_request, "use GET\n");
      co_return co_await metrics(req);
    }
    if (!path.starts_with("/kv/")) co_return make_response(req, http::status::not_found, "unknown path\n");
    std::string key;
    if (!percent_decode(path.substr(4), key))
      co_return make_response(req, http::status::bad_request, "bad percent-encoding in key\n");
    if (key.empty()) co_return make_response(req, http::status::bad_request, "empty key\n");
    if (key.size() > max_key)
      co_return make_response(req, http::status::bad_request, "key longer than 1024 bytes\n");
    kv::op o{};
    switch (req.method()) {
      case http::verb::put: o = kv::op::put; break;
      case http::verb::post: o = kv::op::append; break;
      case http::verb::delete_: o = kv::op::erase; break;
      case http::verb::get: o = kv::op::get; break;
      default: co_return make_response(req, http::status::bad_request, "method not supported on /kv/\n");
    }
    auto command = kv::encode(o, key, o == kv::op::put || o == kv::op::append ? std::string_view(req.body()) : std::string_view{});
    auto [ec, r] = co_await submit(std::move(command), o == kv::op::get);
    if (ec) co_return unavailable(req, ec);
    if (r.bad) co_return make_response(req, http::status::internal_server_error, "command did not decode\n");
    if (o == kv::op::get) {
      if (!r.found) co_return make_response(req, http::status::not_found, "no such key\n");
      co_return make_response(req, http::status::ok, std::move(r.value), "application/octet-stream");
    }
    co_return make_response(req, http::status::ok, "");
  }

  /// Proposes (or reads) through the node, giving up after the request timeout. The
  /// operation itself cannot be cancelled: after a timeout it may still apply.
  ba::awaitable<std::pair<std::error_code, kv::result>> submit(std::vector<std::byte> command, bool read) {
    struct op_state {
      explicit op_state(ba::any_io_executor ex) : timer(std::move(ex)) {}
      ba::steady_timer timer;
      bool done = false;
      std::error_code ec;
      kv::result r;
    };
    auto ex = co_await ba::this_coro::executor;
    auto st = std::make_shared<op_state>(ex);
    st->timer.expires_after(std::chrono::milliseconds(s_.request_timeout_ms));
    auto on_done = ba::bind_executor(ex, [st](std::error_code ec, raftkit::index_t, kv::result r) {
      if (st->done) return;
      st->done = true;
      st->ec = ec;
      st->r = std::move(r);
      st->timer.cancel();
    });
    if (read) node_.read(std::move(command), std::move(on_done));
    else node_.propose(std::move(command), std::move(on_done));
    if (!st->done) co_await st->timer.async_wait(ba::as_tuple(ba::use_awaitable));
    if (!st->done) {
      st->done = true;
      co_return std::pair{std::error_code(raftkit::errc::timeout), kv::result{}};
    }
    co_return std::pair{st->ec, std::move(st->r)};
  }

  /// 503 for every failure: the client retries. Whether the command may have applied is
  /// said explicitly, so a client can tell "retry safely" from "check before retrying".
  response unavailable(const request& req, std::error_code ec) {
    auto res = make_response(req, http::status::service_unavailable, ec.message() + "\n");
    res.set(http::field::retry_after, "1");
    const bool not_applied = ec == raftkit::errc::not_leader || ec == raftkit::errc::busy;
    res.set("X-Raftkit-Outcome", not_applied ? "not-applied" : "unknown");
    return res;
  }

  ba::awaitable<response> status(const request& req) {
    const raftkit::node_status st = co_await node_.status(ba::use_awaitable);
    boost::json::object o;
    o["id"] = st.id;
    o["role"] = raftkit::to_string(st.role);
    o["term"] = st.term;
    o["leader"] = st.leader;
    o["commit_index"] = st.commit_index;
    o["applied_index"] = st.applied_index;
    o["last_log_index"] = st.last_log_index;
    o["durable_index"] = st.durable_index;
    o["pending_proposals"] = st.pending_proposals;
    co_return make_response(req, http::status::ok, boost::json::serialize(o) + "\n", "application/json");
  }

  ba::awaitable<response> metrics(const request& req) {
    const raftkit::node_status st = co_await node_.status(ba::use_awaitable);
    const raftkit::node_counters c = node_.counters();
    const raftkit::asio::tcp_stats t = node_.transport_stats();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
      out += "# HELP ";
      out += name;
      out += ' ';
      out += help;
      out += "\n# TYPE ";
      out += name;
      out += ' ';
      out += type;
      out += '\n';
      out += name;
      out += ' ';
      out += std::to_string(v);
      out += '\n';
    };
    metric("raftkit_role", "gauge", "0 follower, 1 candidate, 2 leader", static_cast<std::uint64_t>(st.role));
    metric("raftkit_term", "gauge", "current term", st.term);
    metric("raftkit_leader", "gauge", "id of the known leader, 0 if none", st.leader);
    metric("raftkit_commit_index", "gauge", "commit index", st.commit_index);
    metric("raftkit_applied_index", "gauge", "last applied index", st.applied_index);
    metric("raftkit_last_log_index", "gauge", "last log index", st.last_log_index);
    metric("raftkit_proposals_total", "counter", "proposals made on this node", c.proposals);
    metric("raftkit_forwarded_total", "counter", "proposals forwarded to the leader", c.forwarded);
    metric("raftkit_elections_total", "counter", "elections this node started", c.elections);
    metric("raftkit_messages_sent_total", "counter", "Raft messages written to sockets", t.messages_sent);
    metric("raftkit_messages_received_total", "counter", "Raft messages received", t.messages_received);
    metric("raftkit_bytes_sent_total", "counter", "Raft frame bytes written", t.bytes_sent);
    metric("raftkit_bytes_received_total", "counter", "Raft frame bytes received", t.bytes_received);
    metric("raftkit_messages_dropped_total", "counter", "Raft messages dropped by the transport", t.dropped);
    if (s_.fsync_stats) {
      const raftkit::file::sync_stats f = s_.fsync_stats();
      out += "# HELP raftkit_fsync_seconds fdatasync latency of the log store\n# TYPE raftkit_fsync_seconds summary\n";
      out += "raftkit_fsync_seconds_sum " + std::to_string(static_cast<double>(f.total_ns) / 1e9) + '\n';
      out += "raftkit_fsync_seconds_count " + std::to_string(f.count) + '\n';
      out += "# HELP raftkit_fsync_seconds_max longest fdatasync so far\n# TYPE raftkit_fsync_seconds_max gauge\n";
      out += "raftkit_fsync_seconds_max " + std::to_string(static_cast<double>(f.max_ns) / 1e9) + '\n';
    }
    co_return make_response(req, http::status::ok, std::move(out), "text/plain; version=0.0.4");
  }

  ba::io_context& io_;
  const settings& s_;
  node_type& node_;
};

template <class Store, class MakeStore>
int run(const settings& s, MakeStore make_store) {
  const auto peers = parse_cluster(s.cluster);
  if (!peers.contains(s.id)) throw std::invalid_argument("--id is not in --cluster");
  const auto http_addr = parse_address(s.http);

  ba::io_context io(1);
  raftkit::node_config cfg;
  cfg.id = s.id;
  for (const auto& [id, a] : peers) cfg.members.push_back(id);
  cfg.election_timeout = std::chrono::milliseconds(s.election_timeout_ms);
  cfg.heartbeat_interval = std::chrono::milliseconds(std::max(1u, s.election_timeout_ms / 5));
  cfg.seed = std::random_device{}();
  using node_type = raftkit::asio::node<Store, kv::machine>;
  node_type node(io.get_executor(), cfg, cluster_id, peers, make_store, kv::machine{});

  tcp::acceptor acceptor(io);
  const tcp::endpoint ep(ba::ip::make_address(http_addr.host), http_addr.port);
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen();

  server<Store> srv(io, s, node);
  ba::co_spawn(io, srv.listen(acceptor), ba::detached);

  ba::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    node.stop([&] { io.stop(); });
  });

  node.start();
  std::printf("raftkit-kv %llu: raft %s:%u, http %s:%u, data %s\n",
              static_cast<unsigned long long>(s.id), peers.at(s.id).host.c_str(),
              static_cast<unsigned>(node.local_port()), http_addr.host.c_str(),
              static_cast<unsigned>(acceptor.local_endpoint().port()), s.data.c_str());
  std::fflush(stdout);
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"raftkit-kv: a replicated key-value store over HTTP"};
  app.add_option("--id", s.id, "this node's id")->required();
  app.add_option("--cluster", s.cluster, "every member: id=host:port,...")->required();
  app.add_option("--http", s.http, "HTTP listen address host:port");
  app.add_option("--data", s.data, "data directory")->required();
  app.add_option("--log", s.log, "log store: file or memory")->check(CLI::IsMember({"file", "memory"}));
  app.add_option("--request-timeout-ms", s.request_timeout_ms, "give up on a request after this long");
  app.add_option("--max-body", s.max_body, "largest request body, bytes");
  app.add_option("--election-timeout-ms", s.election_timeout_ms, "base Raft election timeout")
      ->check(CLI::Range(10u, 60000u));
  CLI11_PARSE(app, argc, argv);
  try {
    if (s.log == "memory") {
      return run<raftkit::memory::log_store>(s, [] { return raftkit::memory::log_store{}; });
    }
    const std::filesystem::path dir = std::filesystem::path(s.data) / "raft-log";
    std::filesystem::create_directories(dir);
    // The store lives here, lent to the node, so /metrics can read its fsync latency.
    raftkit::file::log_store store(dir.string());
    s.fsync_stats = [&store] { return store.fsync_stats(); };
    using store_ref = raftkit::log_store_ref<raftkit::file::log_store>;
    return run<store_ref>(s, [&] { return store_ref(store); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftkit-kv %llu: %s\n", static_cast<unsigned long long>(s.id), e.what());
    return 1;
  }
}
