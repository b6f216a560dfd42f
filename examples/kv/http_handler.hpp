#pragma once
// The HTTP side of raftkit-kv, with no sockets in it: the request handler (routes, keys,
// command size, error mapping, /status, /metrics) and the connection loop (limits, time
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

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "kv_machine.hpp"
#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/file/log_store.hpp"
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
};

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

/// Errors after which the command certainly did not apply, so retrying is safe.
inline bool certainly_not_applied(std::error_code ec) {
  return ec == raftkit::errc::not_leader || ec == raftkit::errc::busy || ec == raftkit::errc::too_large;
}

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

/// Serves raftkit-kv's API from a `Node` (raftkit::asio::node over kv::machine, or a fake
/// with the same calls: propose, read, status, counters, transport_stats).
template <class Node>
class handler {
 public:
  handler(Node& node, const http_limits& limits, http_counters& counters,
          std::function<raftkit::file::sync_stats()> fsync_stats = {})
      : node_(node), limits_(limits), counters_(counters), fsync_stats_(std::move(fsync_stats)) {}

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
    const std::string_view value = o == kv::op::put || o == kv::op::append ? std::string_view(req.body()) : std::string_view{};
    // A command that cannot travel in one replication message would be refused by the
    // node (or, before it refused them, stall replication): refuse it here, unproposed.
    if (const std::size_t n = kv::encoded_size(key.size(), value.size()); n > limits_.max_command) {
      ++counters_.refused_too_large;
      co_return refuse(req, http::status::payload_too_large,
                       "command of " + std::to_string(n) + " bytes does not fit one replication message (at most " +
                           std::to_string(limits_.max_command) + ")");
    }
    auto [ec, r] = co_await submit(kv::encode(o, key, value), o == kv::op::get);
    if (ec) co_return failure(req, ec);
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

  /// Proposes (or reads) through the node, giving up after the request timeout. The
  /// operation itself cannot be cancelled: after a timeout it may still apply.
  boost::asio::awaitable<std::pair<std::error_code, kv::result>> submit(std::vector<std::byte> command, bool read) {
    struct op_state {
      explicit op_state(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
      boost::asio::steady_timer timer;
      bool done = false;
      std::error_code ec;
      kv::result r;
    };
    auto ex = co_await boost::asio::this_coro::executor;
    auto st = std::make_shared<op_state>(ex);
    st->timer.expires_after(limits_.request_timeout);
    auto on_done = boost::asio::bind_executor(ex, [st](std::error_code ec, raftkit::index_t, kv::result r) {
      if (st->done) return;
      st->done = true;
      st->ec = ec;
      st->r = std::move(r);
      st->timer.cancel();
    });
    if (read) node_.read(std::move(command), std::move(on_done));
    else node_.propose(std::move(command), std::move(on_done));
    if (!st->done) co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!st->done) {
      st->done = true;
      co_return std::pair{std::error_code(raftkit::errc::timeout), kv::result{}};
    }
    co_return std::pair{st->ec, std::move(st->r)};
  }

  /// A failure from the node. too_large is the client's to fix (413); anything else is
  /// 503 and the client retries. Whether the command may have applied is said explicitly,
  /// so a client can tell "retry safely" from "check before retrying".
  response failure(const request& req, std::error_code ec) {
    if (ec == raftkit::errc::too_large) {
      ++counters_.refused_too_large;
      return refuse(req, http::status::payload_too_large, ec.message());
    }
    auto res = make_response(req, http::status::service_unavailable, ec.message() + "\n");
    res.set(http::field::retry_after, "1");
    res.set(outcome_header, certainly_not_applied(ec) ? "not-applied" : "unknown");
    return res;
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
    metric("raftkit_applied_entries_total", "counter",
           "entries this process applied (after a restart: only those after the snapshot it restored)", c.applied);
    metric("raftkit_forwarded_total", "counter", "proposals forwarded to the leader", c.forwarded);
    metric("raftkit_elections_total", "counter", "elections this node started", c.elections);
    metric("raftkit_messages_sent_total", "counter", "Raft messages written to sockets", t.messages_sent);
    metric("raftkit_messages_received_total", "counter", "Raft messages received", t.messages_received);
    metric("raftkit_bytes_sent_total", "counter", "Raft frame bytes written", t.bytes_sent);
    metric("raftkit_bytes_received_total", "counter", "Raft frame bytes received", t.bytes_received);
    metric("raftkit_messages_dropped_total", "counter", "Raft messages dropped by the transport", t.dropped);
    metric("raftkit_first_log_index", "gauge", "first index the log holds (entries before it are compacted)",
           st.first_log_index);
    metric("raftkit_snapshot_index", "gauge", "last index the newest snapshot covers, 0 if none", st.snapshot_index);
    metric("raftkit_snapshot_bytes", "gauge", "content bytes of the newest snapshot", st.snapshot_size);
    metric("raftkit_snapshots_taken_total", "counter", "snapshots of this node's state written", c.snapshots_taken);
    metric("raftkit_snapshot_failures_total", "counter", "snapshots this node failed to write", c.snapshot_failures);
    metric("raftkit_snapshots_installed_total", "counter", "snapshots received from a leader and restored",
           c.snapshots_installed);
    metric("raftkit_snapshots_sent_total", "counter", "snapshots a follower installed from this node as leader",
           c.snapshots_sent);
    metric("raftkit_snapshot_sent_bytes_total", "counter", "InstallSnapshot chunk bytes sent", c.snapshot_bytes_sent);
    metric("raftkit_snapshot_received_bytes_total", "counter", "InstallSnapshot chunk bytes received",
           c.snapshot_bytes_received);
    out += "# HELP raftkit_snapshot_last_duration_seconds how long the last snapshot took to write\n"
           "# TYPE raftkit_snapshot_last_duration_seconds gauge\n";
    out += "raftkit_snapshot_last_duration_seconds " + std::to_string(static_cast<double>(c.last_snapshot_ns) / 1e9) + '\n';
    metric("raftkit_http_connections_accepted_total", "counter", "HTTP connections taken into a session",
           h.connections_accepted);
    metric("raftkit_http_connections_refused_total", "counter",
           "HTTP connections refused with 503 because --max-connections were open", h.connections_refused);
    metric("raftkit_http_connections_active", "gauge", "HTTP connections open now", h.connections_active);
    metric("raftkit_http_accept_errors_total", "counter",
           "failed accepts (e.g. out of file descriptors), each followed by a back-off", h.accept_errors);
    metric("raftkit_http_idle_timeouts_total", "counter", "connections closed with no request begun in time",
           h.idle_timeouts);
    metric("raftkit_http_read_timeouts_total", "counter", "connections closed because a request did not arrive in time",
           h.read_timeouts);
    metric("raftkit_http_write_timeouts_total", "counter",
           "connections closed because a response did not leave in time", h.write_timeouts);
    metric("raftkit_http_requests_total", "counter", "HTTP requests read", h.requests);
    metric("raftkit_http_refused_malformed_total", "counter", "requests refused with 400 as malformed HTTP",
           h.refused_malformed);
    metric("raftkit_http_refused_header_total", "counter", "requests refused with 431 (header too large)",
           h.refused_header);
    metric("raftkit_http_refused_too_large_total", "counter", "requests refused with 413 (body or command too large)",
           h.refused_too_large);
    metric("raftkit_http_refused_chunked_total", "counter", "requests refused with 411 (chunked body)",
           h.refused_chunked);
    metric("raftkit_http_session_errors_total", "counter", "HTTP sessions ended by an unexpected exception",
           h.session_errors);
    if (fsync_stats_) {
      const raftkit::file::sync_stats f = fsync_stats_();
      out += "# HELP raftkit_fsync_seconds fdatasync latency of the log store\n# TYPE raftkit_fsync_seconds summary\n";
      out += "raftkit_fsync_seconds_sum " + std::to_string(static_cast<double>(f.total_ns) / 1e9) + '\n';
      out += "raftkit_fsync_seconds_count " + std::to_string(f.count) + '\n';
      out += "# HELP raftkit_fsync_seconds_max longest fdatasync so far\n# TYPE raftkit_fsync_seconds_max gauge\n";
      out += "raftkit_fsync_seconds_max " + std::to_string(static_cast<double>(f.max_ns) / 1e9) + '\n';
    }
    co_return make_response(req, http::status::ok, std::move(out), "text/plain; version=0.0.4");
  }

  Node& node_;
  const http_limits& limits_;
  http_counters& counters_;
  std::function<raftkit::file::sync_stats()> fsync_stats_;
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
