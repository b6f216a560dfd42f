#pragma once
// The HTTP side of raftkit-kv, with no sockets in it: the request handler (routes, keys,
// command size, read consistency, leadership transfer, error mapping, /status, /metrics) and the connection loop (limits, time
// limits, pipelining, refusals) over any Asio stream. main.cpp runs them over TCP;
// test_handler.cpp and tests/fuzz/fuzz_kv.cpp over an in-memory stream and a fake node
// (testing.hpp), so what is fuzzed is what serves.
//
// Every refusal is an HTTP status or a closed connection, and what one connection may make
// the server hold is bounded: its read buffer (max_header plus one read), one request body
// (max_body) and one response at a time (pipelined requests are read only after the
// previous response is written, so they are answered in order).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "kv_machine.hpp"
#include "members.hpp"
#include "observability.hpp"
#include "raftkit/asio/steady_clock.hpp"
#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/config.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/membership.hpp"
#include "raftkit/status.hpp"

namespace kv {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;
using milliseconds = std::chrono::milliseconds;

/// Longest key, bytes (after percent-decoding).
inline constexpr std::size_t max_key = 1024;

/// Largest header limit the server accepts: Beast keeps a field's length in 16 bits and
/// throws (from inside the read, which ends the event loop and the process) for a field
/// value of 64 KiB, so no header may be long enough to hold one.
inline constexpr std::size_t largest_header_limit = 60 << 10;

/// What the server accepts from a client, and how long it waits for one.
struct http_limits {
  std::size_t max_body = 1 << 20;     ///< largest request body (413 beyond)
  std::size_t max_header = 8 << 10;   ///< largest request line plus header fields (431 beyond)
  /// Largest command that fits one replication message (413 beyond, before the node sees
  /// it); see startup.hpp for how it follows from max_body.
  std::size_t max_command = std::size_t(1) << 21;
  milliseconds request_timeout{2000};  ///< for the node's answer (503, outcome unknown)
  milliseconds idle_timeout{30000};    ///< for the first byte of the next request
  milliseconds read_timeout{10000};    ///< from a request's first byte to its last
  milliseconds write_timeout{10000};   ///< for a response to leave
  /// For a membership change (POST and DELETE on /admin/members): the engine bounds a
  /// new voter's catch-up (node_config::catch_up_timeout) and joint consensus commits
  /// within a few heartbeats, so this is only a backstop (503, outcome unknown).
  milliseconds change_timeout{60000};
};

/// What the HTTP server counts, for /metrics; shared by every connection.
struct http_counters {
  std::atomic<std::uint64_t> connections_accepted{0};  ///< taken into a session
  std::atomic<std::uint64_t> connections_refused{0};   ///< over the bound: 503 and closed
  std::atomic<std::uint64_t> connections_active{0};    ///< sessions open now
  std::atomic<std::uint64_t> accept_errors{0};         ///< accept failed (EMFILE...): backed off
  std::atomic<std::uint64_t> idle_timeouts{0};         ///< no request began in time
  std::atomic<std::uint64_t> read_timeouts{0};         ///< a request did not arrive in time
  std::atomic<std::uint64_t> write_timeouts{0};        ///< a response did not leave in time
  std::atomic<std::uint64_t> requests{0};              ///< requests read whole
  std::atomic<std::uint64_t> refused_malformed{0};     ///< 400: not HTTP we parse
  std::atomic<std::uint64_t> refused_header{0};        ///< 431: header over max_header
  std::atomic<std::uint64_t> refused_too_large{0};     ///< 413: body or command too large
  std::atomic<std::uint64_t> refused_chunked{0};       ///< 411: a chunked body
  std::atomic<std::uint64_t> session_errors{0};        ///< a session ended by an exception
  latency_histogram write_seconds;  ///< a write's proposal to its completion (applied here), successful ones
  latency_histogram read_seconds;   ///< the same for reads
  /// GETs handed to the node, by read_consistency (linearizable, lease, local).
  std::array<std::atomic<std::uint64_t>, 3> reads{};
  std::atomic<std::uint64_t> transfers{0};             ///< POST /admin/transfer handed to the node
  std::atomic<std::uint64_t> membership_changes{0};    ///< changes on /admin/members handed to the node
  std::atomic<std::uint64_t> tls_handshake_failures{0};  ///< HTTPS: a client's TLS handshake failed
};

/// The names of raftkit::read_consistency in `?consistency=`, /status and /metrics, by value.
inline constexpr std::array<std::string_view, 3> consistency_names = {"linearizable", "lease", "local"};

/// The value of `name` in a request target's query string (`/path?a=1&b=2`), as given.
inline std::optional<std::string_view> query_param(std::string_view target, std::string_view name) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

/// Percent-decodes a path segment; false on a malformed escape.
inline bool percent_decode(std::string_view in, std::string& out) {
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

/// The header that says whether a failed command may have applied.
inline constexpr std::string_view outcome_header = "X-Raftkit-Outcome";

/// A response in the request's HTTP version, keeping the connection as it asked.
inline response make_response(unsigned version, bool keep_alive, http::status st, std::string body,
                              std::string_view type = "text/plain") {
  response res(st, version);
  res.set(http::field::server, "raftkit-kv");
  res.set(http::field::content_type, type);
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

inline response make_response(const request& req, http::status st, std::string body,
                              std::string_view type = "text/plain") {
  return make_response(req.version(), req.keep_alive(), st, std::move(body), type);
}

/// A refusal made before the node saw anything: the command did not apply.
inline response refusal(unsigned version, bool keep_alive, http::status st, std::string why) {
  auto res = make_response(version, keep_alive, st, std::move(why) + "\n");
  res.set(outcome_header, "not-applied");
  return res;
}

/// A refusal after which the connection closes (the request could not be read whole).
inline response closing_refusal(http::status st, std::string why) {
  return refusal(11, false, st, std::move(why));
}

/// The status for a request that could not be read, or nullopt to close without one
/// (the client went away, or the time limit closed the socket).
inline std::optional<http::status> read_refusal(boost::system::error_code ec) {
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return http::status::request_header_fields_too_large;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == boost::system::error_code(http::error::end_of_stream).category())
    return http::status::bad_request;  // any other parse error
  return std::nullopt;
}

/// What the membership endpoints need beyond the node: the members' addresses (which the
/// node's transport follows) and a way to reach a joining node.
struct membership_support {
  directory& members;
  /// Sends PUT /admin/peers with `body` to the raftkit-kv at `http` (host:port); completes
  /// with "" once it answered 200 or 409 (it has a configuration already), else with why
  /// not. main.cpp does it over a socket, the tests in memory.
  std::function<boost::asio::awaitable<std::string>(std::string http, std::string body)> introduce;
};

/// Serves raftkit-kv's API from a `Node` (raftkit::asio::node over kv::machine, or a fake
/// with the same calls: propose, read, transfer_leadership, change_membership, members,
/// status, counters, transport_stats).
///
/// GET /kv/KEY reads through the node's `read` (ReadIndex and kv::machine::query, no log
/// entry), `?consistency=linearizable` (the default), `lease` or `local`; on a follower
/// the leader only confirms the read index and the follower answers from its own state.
/// POST /admin/transfer?to=N (or `to=any`) hands leadership over.
///
/// Membership (with a membership_support): GET /admin/members lists this node's latest
/// configuration; on the leader, POST /admin/members (`{"id":4,"raft":"host:port",
/// "http":"host:port","role":"learner"|"voter"}`) adds a node started with --join (first
/// telling it the members' addresses, PUT /admin/peers), DELETE /admin/members/N removes
/// one and POST /admin/members/N/promote makes a learner a voter. A follower answers 409
/// with the leader's id (and HTTP address when known) in X-Raftkit-Leader(-Http).
template <class Node>
class handler {
 public:
  handler(Node& node, const http_limits& limits, http_counters& counters,
          std::function<raftkit::file::sync_stats()> fsync_stats = {},
          const replication_tracker* replication = nullptr, membership_support* membership = nullptr)
      : node_(node),
        limits_(limits),
        counters_(counters),
        fsync_stats_(std::move(fsync_stats)),
        replication_(replication),
        membership_(membership) {}

  const http_limits& limits() const noexcept { return limits_; }
  http_counters& counters() noexcept { return counters_; }

  /// Answers one request.
  boost::asio::awaitable<response> handle(const request& req) {
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/status" || path == "/metrics") {
      if (req.method() != http::verb::get) co_return refuse(req, http::status::bad_request, "use GET");
      if (path == "/status") co_return co_await status(req);
      co_return co_await metrics(req);
    }
    if (path == "/admin/transfer") {
      if (req.method() != http::verb::post) co_return refuse(req, http::status::bad_request, "use POST");
      co_return co_await transfer(req, target);
    }
    if (path == "/admin/members" || path.starts_with("/admin/members/") || path == "/admin/peers") {
      if (!membership_) co_return refuse(req, http::status::not_found, "membership is not served here");
      co_return co_await membership_route(req, path);
    }
    if (!path.starts_with("/kv/")) co_return refuse(req, http::status::not_found, "unknown path");
    std::string key;
    if (!percent_decode(path.substr(4), key))
      co_return refuse(req, http::status::bad_request, "bad percent-encoding in key");
    if (key.empty()) co_return refuse(req, http::status::bad_request, "empty key");
    if (key.size() > max_key)
      co_return refuse(req, http::status::bad_request, "key longer than " + std::to_string(max_key) + " bytes");
    kv::op o{};
    switch (req.method()) {
      case http::verb::put: o = kv::op::put; break;
      case http::verb::post: o = kv::op::append; break;
      case http::verb::delete_: o = kv::op::erase; break;
      case http::verb::get: o = kv::op::get; break;
      default: co_return refuse(req, http::status::bad_request, "method not supported on /kv/");
    }
    const auto consistency_arg = query_param(target, "consistency");
    raftkit::read_consistency consistency = raftkit::read_consistency::linearizable;
    if (consistency_arg) {
      if (o != kv::op::get) co_return refuse(req, http::status::bad_request, "consistency applies to GET only");
      const auto* it = std::find(consistency_names.begin(), consistency_names.end(), *consistency_arg);
      if (it == consistency_names.end())
        co_return refuse(req, http::status::bad_request, "consistency must be linearizable, lease or local");
      consistency = static_cast<raftkit::read_consistency>(it - consistency_names.begin());
    }
    const std::string_view value = o == kv::op::put || o == kv::op::append ? std::string_view(req.body()) : std::string_view{};
    // A command that cannot travel in one replication message would be refused by the
    // node (or, before it refused them, stall replication): refuse it here, unproposed.
    if (const std::size_t n = kv::encoded_size(key.size(), value.size()); n > limits_.max_command) {
      ++counters_.refused_too_large;
      co_return refuse(req, http::status::payload_too_large,
                       "command of " + std::to_string(n) + " bytes does not fit one replication message (at most " +
                           std::to_string(limits_.max_command) + ")");
    }
    std::optional<raftkit::read_consistency> read;
    if (o == kv::op::get) read = consistency;
    auto [ec, r] = co_await submit(kv::encode(o, key, value), read);
    if (ec) co_return failure(req, ec, o == kv::op::get);
    if (r.bad) co_return make_response(req, http::status::internal_server_error, "command did not decode\n");
    if (o == kv::op::get) {
      if (!r.found) co_return make_response(req, http::status::not_found, "no such key\n");
      co_return make_response(req, http::status::ok, std::move(r.value), "application/octet-stream");
    }
    co_return make_response(req, http::status::ok, "");
  }

 private:
  static response refuse(const request& req, http::status st, std::string why) {
    return refusal(req.version(), req.keep_alive(), st, std::move(why));
  }

  /// Starts an operation of the node, `start(callback)` with a `(error_code, Args...)`
  /// callback bound to this coroutine's executor, and waits for it at most `limit`. The
  /// operation itself cannot be cancelled: after a timeout it may still complete (and
  /// apply); `completed(ec)` is told whenever it does.
  template <class... Args, class Start>
  boost::asio::awaitable<std::pair<std::error_code, std::tuple<Args...>>> bounded(
      milliseconds limit, Start start, std::function<void(std::error_code)> completed = {}) {
    struct op_state {
      explicit op_state(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
      boost::asio::steady_timer timer;
      bool done = false;
      std::error_code ec;
      std::tuple<Args...> value;
    };
    auto ex = co_await boost::asio::this_coro::executor;
    auto st = std::make_shared<op_state>(ex);
    st->timer.expires_after(limit);
    start(boost::asio::bind_executor(ex, [st, completed = std::move(completed)](std::error_code ec, Args... args) {
      if (completed) completed(ec);
      if (st->done) return;
      st->done = true;
      st->ec = ec;
      st->value = std::tuple<Args...>(std::move(args)...);
      st->timer.cancel();
    }));
    if (!st->done) co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!st->done) {
      st->done = true;
      co_return std::pair{std::error_code(raftkit::errc::timeout), std::tuple<Args...>{}};
    }
    co_return std::pair{st->ec, std::move(st->value)};
  }

  /// Proposes, or reads at a consistency, through the node, giving up after the request
  /// timeout. The operation itself cannot be cancelled: after a timeout it may still apply.
  boost::asio::awaitable<std::pair<std::error_code, kv::result>> submit(std::vector<std::byte> command,
                                                                       std::optional<raftkit::read_consistency> read) {
    latency_histogram& latency = read ? counters_.read_seconds : counters_.write_seconds;
    auto observe = [&latency, start = std::chrono::steady_clock::now()](std::error_code ec) {
      if (!ec) latency.observe(std::chrono::steady_clock::now() - start);
    };
    if (read) ++counters_.reads[static_cast<std::size_t>(*read)];
    auto [ec, v] = co_await bounded<raftkit::index_t, kv::result>(
        limits_.request_timeout,
        [&](auto on_done) {
          if (read) node_.read(std::move(command), *read, std::move(on_done));
          else node_.propose(std::move(command), std::move(on_done));
        },
        observe);
    co_return std::pair{ec, std::move(std::get<1>(v))};
  }

  /// A failure from the node. too_large is the client's to fix (413), and so is a lease
  /// read on a server without lease reads (not_supported, 400); anything else is 503 and
  /// the client retries. Whether the command may have applied is said explicitly
  /// (raftkit::may_have_applied; a read changes nothing), so a client can tell "retry
  /// safely" from "check before retrying".
  response failure(const request& req, std::error_code ec, bool read) {
    if (ec == raftkit::errc::too_large) {
      ++counters_.refused_too_large;
      return refuse(req, http::status::payload_too_large, ec.message());
    }
    if (ec == raftkit::errc::not_supported) return refuse(req, http::status::bad_request, ec.message());
    auto res = make_response(req, http::status::service_unavailable, ec.message() + "\n");
    res.set(http::field::retry_after, "1");
    res.set(outcome_header, read || !raftkit::may_have_applied(ec) ? "not-applied" : "unknown");
    return res;
  }

  /// POST /admin/transfer?to=N|any: 200 with the new leader once it leads; 400 for a bad
  /// or unknown node; 409 when this node is not the leader (or a transfer is under way);
  /// 503 when the transfer failed (timeout: this node leads on) and may be retried.
  boost::asio::awaitable<response> transfer(const request& req, std::string_view target) {
    const auto to = query_param(target, "to");
    if (!to) co_return refuse(req, http::status::bad_request, "say which node: ?to=N or ?to=any");
    raftkit::node_id id = 0;
    if (*to == "any") {
      id = raftkit::any_node;
    } else {
      const auto [end, e] = std::from_chars(to->data(), to->data() + to->size(), id);
      if (e != std::errc{} || end != to->data() + to->size() || id == 0 || id == raftkit::any_node)
        co_return refuse(req, http::status::bad_request, "to must be a node id or any");
    }
    ++counters_.transfers;
    const std::error_code ec = co_await node_.transfer_leadership(id, boost::asio::use_awaitable);
    const raftkit::node_status st = co_await node_.status(boost::asio::use_awaitable);
    if (!ec) {
      boost::json::object o;
      o["leader"] = st.leader;
      o["term"] = st.term;
      co_return make_response(req, http::status::ok, boost::json::serialize(o) + "\n", "application/json");
    }
    if (ec == raftkit::errc::unknown_member) co_return refuse(req, http::status::bad_request, ec.message());
    if (ec == raftkit::errc::not_leader || ec == raftkit::errc::transferring) {
      auto res = make_response(req, http::status::conflict, ec.message() + "; leader " + std::to_string(st.leader) + "\n");
      co_await hint_leader(res, st.leader);
      co_return res;
    }
    auto res = make_response(req, http::status::service_unavailable, ec.message() + "\n");
    res.set(http::field::retry_after, "1");
    co_return res;
  }

  /// Names the leader in X-Raftkit-Leader and, when its HTTP address is known (from its
  /// context or the address book), in X-Raftkit-Leader-Http.
  boost::asio::awaitable<void> hint_leader(response& res, raftkit::node_id leader) {
    res.set("X-Raftkit-Leader", std::to_string(leader));
    if (!membership_ || leader == raftkit::no_node) co_return;
    const raftkit::membership m = co_await node_.members(boost::asio::use_awaitable);
    const addresses a = membership_->members.of(m, leader);
    if (!a.http.empty()) res.set("X-Raftkit-Leader-Http", a.http);
  }

  /// A JSON answer: `o` and a newline.
  static response json_response(const request& req, http::status st, const boost::json::object& o) {
    return make_response(req, st, boost::json::serialize(o) + "\n", "application/json");
  }

  /// /admin/members, /admin/members/N, /admin/members/N/promote and /admin/peers.
  boost::asio::awaitable<response> membership_route(const request& req, std::string_view path) {
    using raftkit::member_change;
    if (path == "/admin/peers") {
      if (req.method() != http::verb::put) co_return refuse(req, http::status::bad_request, "use PUT");
      co_return co_await accept_peers(req);
    }
    if (path == "/admin/members") {
      if (req.method() == http::verb::get) co_return co_await list_members(req);
      if (req.method() == http::verb::post) co_return co_await add_member(req);
      co_return refuse(req, http::status::bad_request, "use GET or POST");
    }
    std::string_view rest = path.substr(std::string_view("/admin/members/").size());
    const bool promote = rest.ends_with("/promote");
    if (promote) rest.remove_suffix(std::string_view("/promote").size());
    const raftkit::node_id id = parse_id(rest);
    if (id == 0)
      co_return refuse(req, http::status::bad_request, "want /admin/members/ID or /admin/members/ID/promote");
    if (promote && req.method() != http::verb::post) co_return refuse(req, http::status::bad_request, "use POST");
    if (!promote && req.method() != http::verb::delete_) co_return refuse(req, http::status::bad_request, "use DELETE");
    std::vector<member_change> changes;  // (GCC 12 cannot take a braced list in a coroutine's call)
    changes.push_back(promote ? member_change::promote(id) : member_change::remove(id));
    co_return co_await change(req, std::move(changes));
  }

  /// GET /admin/members: this node's latest configuration (committed or not), its view of
  /// the leader, and each member's addresses.
  boost::asio::awaitable<response> list_members(const request& req) {
    const raftkit::membership m = co_await node_.members(boost::asio::use_awaitable);
    const raftkit::node_status st = co_await node_.status(boost::asio::use_awaitable);
    boost::json::object o = members_json(m, membership_->members);
    o["self"] = st.id;
    o["leader"] = st.leader;
    co_return json_response(req, http::status::ok, o);
  }

  /// POST /admin/members: on the leader, tells the new node where the members listen, then
  /// adds it as a learner or a voter with its addresses as its context.
  boost::asio::awaitable<response> add_member(const request& req) {
    boost::system::error_code jec;
    const boost::json::value body = boost::json::parse(req.body(), jec);
    if (jec || !body.is_object())
      co_return refuse(req, http::status::bad_request, R"(want {"id":N,"raft":"host:port","http":"host:port","role":"learner|voter"})");
    const auto& o = body.as_object();
    const raftkit::node_id id = id_at(o, "id");
    const addresses a{string_at(o, "raft"), string_at(o, "http")};
    const std::string role = string_at(o, "role");
    if (id == 0) co_return refuse(req, http::status::bad_request, "id must be a positive integer");
    if (!valid_address(a.raft) || !valid_address(a.http))
      co_return refuse(req, http::status::bad_request, "raft and http must be host:port");
    if (role != "learner" && role != "voter") co_return refuse(req, http::status::bad_request, "role must be learner or voter");
    const raftkit::node_status st = co_await node_.status(boost::asio::use_awaitable);
    if (st.role != raftkit::role::leader) co_return co_await change_failure(req, raftkit::errc::not_leader, st.leader);
    const raftkit::membership m = co_await node_.members(boost::asio::use_awaitable);
    if (!m.contains(id)) {
      // The new node cannot take a message from a peer it has no address for.
      std::map<raftkit::node_id, addresses> book;
      for (raftkit::node_id member : m.ids()) book[member] = membership_->members.of(m, member);
      const std::string why = co_await membership_->introduce(a.http, introduction(id, book));
      if (!why.empty()) {
        boost::json::object err;
        err["error"] = "cannot reach node " + std::to_string(id) + " at http " + a.http + ": " + why +
                       " (start it with --join first)";
        err["may_have_applied"] = false;
        auto res = json_response(req, http::status::bad_gateway, err);
        res.set(outcome_header, "not-applied");
        co_return res;
      }
    }
    const std::string context = encode_context(a);
    std::vector<raftkit::member_change> changes;
    changes.push_back(role == "voter" ? raftkit::member_change::add_voter(id, context)
                                      : raftkit::member_change::add_learner(id, context));
    co_return co_await change(req, std::move(changes));
  }

  /// Hands `changes` to the node and answers with the configuration once they are done.
  boost::asio::awaitable<response> change(const request& req, std::vector<raftkit::member_change> changes) {
    ++counters_.membership_changes;
    auto [ec, v] = co_await bounded<raftkit::index_t>(limits_.change_timeout, [&](auto on_done) {
      node_.change_membership(std::move(changes), std::move(on_done));
    });
    const raftkit::node_status st = co_await node_.status(boost::asio::use_awaitable);
    if (ec) co_return co_await change_failure(req, ec, st.leader);
    const raftkit::membership m = co_await node_.members(boost::asio::use_awaitable);
    boost::json::object o = members_json(m, membership_->members);
    o["change_index"] = std::get<0>(v);
    o["leader"] = st.leader;
    co_return json_response(req, http::status::ok, o);
  }

  /// A membership change that failed: the errc's message and whether it may have applied
  /// (raftkit::may_have_applied), as JSON and in X-Raftkit-Outcome. 409 for not_leader
  /// (with the leader hint) and membership_change_in_progress; 400 for a change that does
  /// not fit the configuration; 503 (retry) for everything else.
  boost::asio::awaitable<response> change_failure(const request& req, std::error_code ec, raftkit::node_id leader) {
    http::status code = http::status::service_unavailable;
    if (ec == raftkit::errc::not_leader || ec == raftkit::errc::membership_change_in_progress) code = http::status::conflict;
    if (ec == raftkit::errc::invalid_membership_change || ec == raftkit::errc::unknown_member)
      code = http::status::bad_request;
    if (ec == raftkit::errc::too_large) code = http::status::payload_too_large;
    const bool may = raftkit::may_have_applied(ec);
    boost::json::object o;
    o["error"] = ec.message();
    o["may_have_applied"] = may;
    o["leader"] = leader;
    auto res = json_response(req, code, o);
    res.set(outcome_header, may ? "unknown" : "not-applied");
    if (code == http::status::service_unavailable) res.set(http::field::retry_after, "1");
    if (ec == raftkit::errc::not_leader) co_await hint_leader(res, leader);
    co_return res;
  }

  /// PUT /admin/peers on a node started with --join: the leader about to add it says where
  /// the members listen. Refused (409) once the node has a configuration.
  boost::asio::awaitable<response> accept_peers(const request& req) {
    const raftkit::membership m = co_await node_.members(boost::asio::use_awaitable);
    if (!m.voters.empty())
      co_return refuse(req, http::status::conflict, "this node has a configuration already (index " +
                                                        std::to_string(m.index) + "): it takes members from its log");
    boost::system::error_code jec;
    const boost::json::value body = boost::json::parse(req.body(), jec);
    const boost::json::object* o = !jec && body.is_object() ? &body.as_object() : nullptr;
    const boost::json::value* list = o ? o->if_contains("members") : nullptr;
    if (!list || !list->is_array()) co_return refuse(req, http::status::bad_request, R"(want {"to":N,"members":[...]})");
    const raftkit::node_id self = membership_->members.self();
    if (id_at(*o, "to") != self)
      co_return refuse(req, http::status::bad_request, "this is node " + std::to_string(self) + ", not node " +
                                                           std::to_string(id_at(*o, "to")));
    std::map<raftkit::node_id, addresses> book;
    for (const auto& e : list->as_array()) {
      const raftkit::node_id id = e.is_object() ? id_at(e.as_object(), "id") : 0;
      if (id == 0) co_return refuse(req, http::status::bad_request, "a member without an id");
      book[id] = {string_at(e.as_object(), "raft"), string_at(e.as_object(), "http")};
      if (!valid_address(book[id].raft)) co_return refuse(req, http::status::bad_request, "a member without a raft address");
    }
    membership_->members.introduce(book);
    boost::json::object ok;
    ok["peers"] = book.size();
    co_return json_response(req, http::status::ok, ok);
  }

  boost::asio::awaitable<response> status(const request& req) {
    const raftkit::node_status st = co_await node_.status(boost::asio::use_awaitable);
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
    o["pending_reads"] = st.pending_reads;
    o["pre_vote"] = st.pre_vote;
    o["check_quorum"] = st.check_quorum;
    o["lease_valid"] = st.lease_valid;
    // (lease_until is time_point::min() without a lease: subtract only while it holds.)
    o["lease_ms_left"] = st.lease_valid ? std::chrono::duration<double, std::milli>(
                                              st.lease_until - raftkit::asio::steady_clock{}.now()).count()
                                        : 0.0;
    o["transfer_target"] = st.transfer_target == raftkit::no_node ? 0 : st.transfer_target;
    const raftkit::node_counters c = node_.counters();
    boost::json::object reads;
    for (std::size_t i = 0; i < consistency_names.size(); ++i) reads[consistency_names[i]] = counters_.reads[i].load();
    o["reads"] = std::move(reads);  // GETs by consistency
    o["read_index_calls"] = c.reads;
    o["lease_reads"] = c.lease_reads;
    o["read_rounds"] = c.read_rounds;
    o["elections"] = c.elections;
    o["elections_won"] = c.elections_won;
    o["pre_votes"] = c.pre_votes;
    o["quorum_lost"] = c.quorum_lost;
    o["transfers"] = c.transfers;
    o["first_log_index"] = st.first_log_index;
    o["snapshot_index"] = st.snapshot_index;
    o["snapshot_term"] = st.snapshot_term;
    o["snapshot_size"] = st.snapshot_size;
    co_return make_response(req, http::status::ok, boost::json::serialize(o) + "\n", "application/json");
  }

  boost::asio::awaitable<response> metrics(const request& req) {
    const raftkit::node_status st = co_await node_.status(boost::asio::use_awaitable);
    const raftkit::node_counters c = node_.counters();
    const raftkit::asio::tcp_stats t = node_.transport_stats();
    const http_counters& h = counters_;
    metrics_writer w;
    w.gauge("raftkit_role", "0 follower, 1 candidate, 2 leader, 3 pre-candidate", static_cast<unsigned>(st.role));
    w.gauge("raftkit_term", "current term", st.term);
    w.gauge("raftkit_leader", "id of the known leader, 0 if none", st.leader);
    w.gauge("raftkit_commit_index", "commit index", st.commit_index);
    w.gauge("raftkit_applied_index", "last applied index", st.applied_index);
    w.gauge("raftkit_last_log_index", "last log index", st.last_log_index);
    w.gauge("raftkit_durable_index", "last index on stable storage here", st.durable_index);
    w.gauge("raftkit_pending_proposals", "proposals accepted here and not yet applied", st.pending_proposals);
    w.gauge("raftkit_uncommitted_bytes", "leader: bytes appended in its term and not yet committed", st.uncommitted_bytes);
    for (const auto& p : st.peers) {  // the leader's view of each follower
      const std::string peer = std::to_string(p.id);
      w.gauge("raftkit_peer_lag_entries", "leader: entries of its log a follower is not known to hold durably",
              st.last_log_index - std::min(st.last_log_index, p.match_index), {{"peer", peer}});
    }
    if (replication_) {
      const auto now = replication_tracker::clock::now();
      for (const auto& p : st.peers)
        w.gauge("raftkit_peer_lag_seconds",
                "leader: seconds since it appended the oldest entry a follower is not known to hold durably (0: it "
                "holds the whole log; entries older than this leadership count from its start)",
                replication_->lag_seconds(p.match_index, now), {{"peer", std::to_string(p.id)}});
    }
    if constexpr (requires { node_.transport().peer_connections(); }) {
      for (const auto& p : node_.transport().peer_connections())
        w.gauge("raftkit_peer_connected", "1 while this node's outbound Raft connection to a peer is up (handshake done)",
                p.connected ? 1 : 0, {{"peer", std::to_string(p.id)}});
    }
    for (const auto& p : st.peers)
      w.gauge("raftkit_peer_match_index", "leader: highest index known durable on a follower", p.match_index,
              {{"peer", std::to_string(p.id)}});
    for (const auto& p : st.peers)
      w.gauge("raftkit_peer_inflight_messages", "leader: AppendEntries in flight to a follower", p.in_flight,
              {{"peer", std::to_string(p.id)}});
    for (const auto& p : st.peers)
      w.gauge("raftkit_peer_probing", "leader: 1 while looking for a follower's match point", p.probing ? 1 : 0,
              {{"peer", std::to_string(p.id)}});
    w.counter("raftkit_proposals_total", "proposals made on this node", c.proposals);
    w.counter("raftkit_proposals_refused_total", "proposals refused as not applied", c.proposals_refused);
    w.counter("raftkit_forwarded_total", "proposals forwarded to the leader", c.forwarded);
    w.counter("raftkit_applied_entries_total", "entries this process applied (after a restart: only those after the snapshot it restored)", c.applied);
    w.counter("raftkit_elections_total", "elections this node started", c.elections);
    w.counter("raftkit_elections_won_total", "elections after which this node led", c.elections_won);
    w.counter("raftkit_pre_votes_total", "pre-vote rounds this node started", c.pre_votes);
    w.counter("raftkit_quorum_lost_total", "times this node stepped down by check-quorum", c.quorum_lost);
    w.counter("raftkit_append_rejections_total", "AppendEntries rejections acted on as leader", c.rejections);
    w.counter("raftkit_messages_sent_total", "Raft messages written to sockets", t.messages_sent);
    w.counter("raftkit_messages_received_total", "Raft messages received", t.messages_received);
    w.counter("raftkit_bytes_sent_total", "Raft frame bytes written", t.bytes_sent);
    w.counter("raftkit_bytes_received_total", "Raft frame bytes received", t.bytes_received);
    w.counter("raftkit_messages_dropped_total", "Raft messages dropped by the transport", t.dropped);
    w.counter("raftkit_bad_frames_total", "Raft frames that failed validation or decoding", t.bad_frames);
    w.counter("raftkit_peer_connects_total", "outbound peer connections that completed their handshake", t.connects);
    w.counter("raftkit_peer_connect_failures_total", "outbound peer connection attempts that failed", t.connect_failures);
    w.counter("raftkit_peer_accepts_total", "inbound peer connections that completed their handshake", t.accepted);
    w.histogram("raftkit_write_seconds", "a write's latency from proposal to applied on this node (successful writes)",
                h.write_seconds);
    w.histogram("raftkit_read_seconds", "a read's latency from request to answer (successful reads)", h.read_seconds);
    w.counter("raftkit_http_connections_accepted_total", "HTTP connections taken into a session",
              h.connections_accepted.load());
    w.counter("raftkit_http_connections_refused_total",
              "HTTP connections refused with 503 because --max-connections were open", h.connections_refused.load());
    w.gauge("raftkit_http_connections_active", "HTTP connections open now", h.connections_active.load());
    w.counter("raftkit_http_accept_errors_total", "failed accepts (e.g. out of file descriptors), each followed by a back-off",
              h.accept_errors.load());
    w.counter("raftkit_http_idle_timeouts_total", "connections closed with no request begun in time", h.idle_timeouts.load());
    w.counter("raftkit_http_read_timeouts_total", "connections closed because a request did not arrive in time",
              h.read_timeouts.load());
    w.counter("raftkit_http_write_timeouts_total", "connections closed because a response did not leave in time",
              h.write_timeouts.load());
    w.counter("raftkit_http_requests_total", "HTTP requests read", h.requests.load());
    w.counter("raftkit_http_refused_malformed_total", "requests refused with 400 as malformed HTTP",
              h.refused_malformed.load());
    w.counter("raftkit_http_refused_header_total", "requests refused with 431 (header too large)", h.refused_header.load());
    w.counter("raftkit_http_refused_too_large_total", "requests refused with 413 (body or command too large)",
              h.refused_too_large.load());
    w.counter("raftkit_http_refused_chunked_total", "requests refused with 411 (chunked body)", h.refused_chunked.load());
    w.counter("raftkit_http_session_errors_total", "HTTP sessions ended by an unexpected exception", h.session_errors.load());
    w.counter("raftkit_votes_ignored_total", "vote requests ignored while a leader was current", c.votes_ignored);
    w.counter("raftkit_transfers_total", "leadership transfers this node started", c.transfers);
    w.counter("raftkit_http_membership_changes_total", "membership changes (/admin/members) handed to the node",
              h.membership_changes.load());
    w.gauge("raftkit_pre_vote", "1 if pre-vote is on", st.pre_vote ? 1 : 0);
    w.gauge("raftkit_check_quorum", "1 if check-quorum is on", st.check_quorum ? 1 : 0);
    w.gauge("raftkit_lease_valid", "1 while this leader's read lease holds", st.lease_valid ? 1 : 0);
    for (std::size_t i = 0; i < consistency_names.size(); ++i)
      w.counter("raftkit_reads_total", "GETs handed to the node, by consistency", h.reads[i].load(),
                {{"consistency", std::string(consistency_names[i])}});
    w.counter("raftkit_read_index_total", "read index requests this node served or asked for", c.reads);
    w.counter("raftkit_lease_reads_total", "reads this leader answered from its lease", c.lease_reads);
    w.counter("raftkit_read_rounds_total", "heartbeat rounds a majority confirmed", c.read_rounds);
    w.counter("raftkit_http_tls_handshake_failures_total", "HTTPS connections whose TLS handshake failed",
              h.tls_handshake_failures.load());
    for (std::size_t r = 0; r < raftkit::asio::refusal_kinds; ++r)
      w.counter("raftkit_peer_handshakes_refused_total", "Raft peer handshakes this node refused, by reason",
                t.refusals[r], {{"reason", std::string(to_string(static_cast<raftkit::asio::refusal>(r)))}});
    w.counter("raftkit_peer_refused_by_peer_total",
              "Raft peer connections the other side ended with a TLS alert (it refused this node)", t.refused_by_peer);
    w.gauge("raftkit_first_log_index", "first index the log holds (entries before it are compacted)",
            st.first_log_index);
    w.gauge("raftkit_snapshot_index", "last index the newest snapshot covers, 0 if none", st.snapshot_index);
    w.gauge("raftkit_snapshot_bytes", "content bytes of the newest snapshot", st.snapshot_size);
    w.counter("raftkit_snapshots_taken_total", "snapshots of this node's state written", c.snapshots_taken);
    w.counter("raftkit_snapshot_failures_total", "snapshots this node failed to write", c.snapshot_failures);
    w.counter("raftkit_snapshots_installed_total", "snapshots received from a leader and restored",
              c.snapshots_installed);
    w.counter("raftkit_snapshots_sent_total", "snapshots a follower installed from this node as leader",
              c.snapshots_sent);
    w.counter("raftkit_snapshot_sent_bytes_total", "InstallSnapshot chunk bytes sent", c.snapshot_bytes_sent);
    w.counter("raftkit_snapshot_received_bytes_total", "InstallSnapshot chunk bytes received",
              c.snapshot_bytes_received);
    w.gauge("raftkit_snapshot_last_duration_seconds", "how long the last snapshot took to write",
            static_cast<double>(c.last_snapshot_ns) / 1e9);
    if (replication_) {
      w.histogram("raftkit_commit_seconds",
                  "leader: per entry appended in its term, seconds from the step that appended it to its log to the "
                  "step that saw it committed (held durably by a majority)",
                  replication_->commit_seconds);
      w.histogram("raftkit_apply_batch_entries",
                  "entries applied to the state machine per engine step (one input: a message, tick or durability "
                  "notice), steps that applied none not counted",
                  replication_->apply_batch_entries);
    }
    if (fsync_stats_) {
      const raftkit::file::sync_stats f = fsync_stats_();
      std::array<double, raftkit::file::sync_stats::bucket_bounds_ns.size()> bounds{};
      for (std::size_t i = 0; i < bounds.size(); ++i)
        bounds[i] = static_cast<double>(raftkit::file::sync_stats::bucket_bounds_ns[i]) / 1e9;
      w.histogram("raftkit_fsync_seconds", "fdatasync latency of the log store", bounds, f.buckets,
                  static_cast<double>(f.total_ns) / 1e9);
      w.gauge("raftkit_fsync_seconds_max", "longest fdatasync so far", static_cast<double>(f.max_ns) / 1e9);
    }
    std::string out = w.take();
    co_return make_response(req, http::status::ok, std::move(out), "text/plain; version=0.0.4");
  }

  Node& node_;
  const http_limits& limits_;
  http_counters& counters_;
  std::function<raftkit::file::sync_stats()> fsync_stats_;
  const replication_tracker* replication_;
  membership_support* membership_;
};

// --- time limits on a stream ---------------------------------------------------------
// serve_connection sets a deadline before each wait; a TCP stream closes itself when one
// passes (its operation then fails with beast::error::timeout). Other streams (the
// in-memory one of the tests) declare their own set_deadline/clear_deadline/shutdown_send,
// found by argument-dependent lookup.

inline void set_deadline(boost::beast::tcp_stream& s, milliseconds d) { s.expires_after(d); }
inline void clear_deadline(boost::beast::tcp_stream& s) { s.expires_never(); }
inline void shutdown_send(boost::beast::tcp_stream& s) {
  boost::system::error_code ignored;
  s.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
}

/// Bytes asked of the stream per read; the read buffer holds at most max_header more.
inline constexpr std::size_t read_chunk = 16 << 10;

namespace detail {

/// Writes a refusal, then reads and discards what the client still sends until it closes
/// or the read time limit passes: closing with unread data would reset the connection,
/// and the reset could destroy the refusal before the client read it.
template <class Stream>
boost::asio::awaitable<void> refuse_and_close(Stream& stream, const http_limits& limits, response res) {
  using boost::asio::as_tuple;
  using boost::asio::use_awaitable;
  set_deadline(stream, limits.write_timeout);
  auto [wec, wn] = co_await http::async_write(stream, res, as_tuple(use_awaitable));
  (void)wn;
  if (wec) co_return;
  shutdown_send(stream);
  set_deadline(stream, limits.read_timeout);
  std::array<char, 4096> sink;
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(boost::asio::buffer(sink), as_tuple(use_awaitable));
    (void)n;
    if (ec) co_return;
  }
}

/// Reads a request's header, then its body unless it is chunked (then `chunked` and no
/// error). Chunked bodies are refused before a byte of them is parsed: Beast 1.81's chunk
/// parser asserts (and the process aborts) when a final chunk arrives split after "0\r\n"
/// (fixed upstream in boostorg/beast#2861), and the API's clients know their body's length.
template <class Stream>
boost::asio::awaitable<std::pair<boost::system::error_code, bool>> read_request(
    Stream& stream, boost::beast::flat_buffer& buf, http::request_parser<http::string_body>& parser) {
  using boost::asio::as_tuple;
  using boost::asio::use_awaitable;
  auto [ec, n] = co_await http::async_read_header(stream, buf, parser, as_tuple(use_awaitable));
  (void)n;
  if (ec) co_return std::pair{ec, false};
  if (parser.chunked()) co_return std::pair{ec, true};
  auto [bec, bn] = co_await http::async_read(stream, buf, parser, as_tuple(use_awaitable));
  (void)bn;
  co_return std::pair{bec, false};
}

}  // namespace detail

// GCC 12 reports Asio's awaitable frame operator new/delete pair as mismatched once this
// coroutine inlines enough (a false positive: gcc PR middle-end/109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

/// Serves one connection until the client closes it, a time limit passes, or a request
/// is refused (then the connection closes after the refusal). Requests are answered one
/// at a time in the order they arrive, so pipelined requests are answered in order.
template <class Stream, class Node>
boost::asio::awaitable<void> serve_connection(Stream& stream, handler<Node>& h) {
  using boost::asio::as_tuple;
  using boost::asio::use_awaitable;
  const http_limits& limits = h.limits();
  http_counters& counters = h.counters();
  // Bounded: a header over max_header is refused before the buffer fills.
  boost::beast::flat_buffer buf(std::min(limits.max_header, largest_header_limit) + read_chunk);
  for (;;) {
    if (buf.size() == 0) {
      // Between requests a client may stay silent for the idle time limit ...
      set_deadline(stream, limits.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buf.prepare(read_chunk), as_tuple(use_awaitable));
      if (ec) {
        if (ec == boost::beast::error::timeout) ++counters.idle_timeouts;
        break;
      }
      buf.commit(n);
    }
    // ... but once a request has begun, all of it must arrive within the read time limit,
    // however slowly it trickles: a slowloris client cannot hold its slot for long.
    set_deadline(stream, limits.read_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min(limits.max_header, largest_header_limit)));
    parser.body_limit(limits.max_body);
    const auto [ec, chunked] = co_await detail::read_request(stream, buf, parser);
    if (chunked) {
      ++counters.refused_chunked;
      co_await detail::refuse_and_close(
          stream, limits, closing_refusal(http::status::length_required, "send the body with Content-Length, not chunked"));
      co_return;
    }
    if (ec) {
      if (ec == boost::beast::error::timeout) ++counters.read_timeouts;
      const auto st = read_refusal(ec);
      if (!st) break;
      std::string why;
      if (*st == http::status::payload_too_large) {
        ++counters.refused_too_large;
        why = "body larger than " + std::to_string(limits.max_body) + " bytes";
      } else if (*st == http::status::request_header_fields_too_large) {
        ++counters.refused_header;
        why = "request header larger than " + std::to_string(limits.max_header) + " bytes";
      } else {
        ++counters.refused_malformed;
        why = "malformed request: " + ec.message();
      }
      co_await detail::refuse_and_close(stream, limits, closing_refusal(*st, std::move(why)));
      co_return;
    }
    ++counters.requests;
    clear_deadline(stream);  // the handler bounds its own wait (request_timeout)
    response res = co_await h.handle(parser.get());
    set_deadline(stream, limits.write_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, as_tuple(use_awaitable));
    (void)wn;
    if (wec == boost::beast::error::timeout) ++counters.write_timeouts;
    if (wec || !res.keep_alive()) break;
  }
  shutdown_send(stream);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace kv
