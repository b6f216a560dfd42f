// kv_handler: raftkit-kv's HTTP handling and start-up limits, driven in memory (no sockets):
// raw request bytes go through serve_connection to a fake node; the responses are parsed
// back. The socket-level defences (time limits, the connection bound, EMFILE) are tested
// against a real process by test_kv_hostile.py.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

// Boost.JSON compiled into this program (header-only mode).
#include <boost/json/src.hpp>

#include <string>
#include <vector>

#include "http_handler.hpp"
#include "startup.hpp"
#include "testing.hpp"

namespace {

using kv::http::status;
using kv::testing::fake_node;

/// One in-memory server: a fake node, the handler, and the limits it serves under.
struct server {
  explicit server(kv::http_limits l = small_limits()) : limits(l), node(io.get_executor()), h(node, limits, counters) {}

  static kv::http_limits small_limits() {
    kv::http_limits l;
    l.max_body = 4096;
    l.max_header = 2048;
    l.max_command = 1 << 16;
    return l;
  }

  /// Serves `input` as one connection; the responses, which must parse whole.
  std::vector<kv::response> serve(std::string input, std::size_t chunk = 0) {
    last = kv::testing::serve_bytes(io, h, std::move(input), chunk);
    bool clean = false;
    auto rs = kv::testing::parse_responses(last.output, clean);
    CHECK_MESSAGE(clean, "output is not whole responses: " << last.output);
    return rs;
  }

  boost::asio::io_context io;
  kv::http_limits limits;
  kv::http_counters counters;
  fake_node node;
  kv::handler<fake_node> h;
  kv::testing::session_run last;
};

std::string put(const std::string& key, const std::string& value, bool close = false) {
  return "PUT /kv/" + key + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(value.size()) + "\r\n" +
         (close ? "Connection: close\r\n" : "") + "\r\n" + value;
}

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"; }

std::string outcome(const kv::response& r) { return std::string(r[kv::outcome_header]); }

}  // namespace

TEST_SUITE("kv_handler") {

TEST_CASE("pipelined requests are answered in order on one kept-alive connection") {
  server s;
  auto rs = s.serve(put("a", "1") + get("/kv/a") + get("/kv/missing") + "POST /kv/a HTTP/1.1\r\nContent-Length: 1\r\n\r\n2" +
                    get("/kv/a"));
  REQUIRE(rs.size() == 5);
  CHECK(rs[0].result() == status::ok);
  CHECK((rs[1].result() == status::ok && rs[1].body() == "1"));
  CHECK(rs[2].result() == status::not_found);
  CHECK(rs[3].result() == status::ok);
  CHECK((rs[4].result() == status::ok && rs[4].body() == "12"));
  for (const auto& r : rs) CHECK(r.keep_alive());
  CHECK(s.node.commands.size() == 5);
  CHECK(s.last.input_consumed);
}

TEST_CASE("requests arriving one byte per read are answered as when they arrive at once") {
  server whole, bytewise;
  const std::string input = put("k", "value") + get("/kv/k") + get("/status");
  auto a = whole.serve(input);
  auto b = bytewise.serve(input, 1);
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].result() == b[i].result());
    CHECK(a[i].body() == b[i].body());
  }
}

TEST_CASE("requests pipelined after Connection: close are not answered") {
  server s;
  auto rs = s.serve(put("a", "1", true) + get("/kv/a"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::ok);
  CHECK(!rs[0].keep_alive());
  CHECK(s.node.commands.size() == 1);
  CHECK(s.last.send_shut);
}

TEST_CASE("a body over max_body is refused with 413, not applied, and the connection closes") {
  server s;
  auto rs = s.serve(put("big", std::string(s.limits.max_body + 1, 'x')) + get("/kv/big"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::payload_too_large);
  CHECK(outcome(rs[0]) == "not-applied");
  CHECK(!rs[0].keep_alive());
  CHECK(s.node.commands.empty());
  CHECK(s.counters.refused_too_large == 1);
}

TEST_CASE("a body of exactly max_body is applied") {
  server s;
  auto rs = s.serve(put("big", std::string(s.limits.max_body, 'x')));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::ok);
}

TEST_CASE("a request header over max_header is refused with 431 and the connection closes") {
  server s;
  auto rs = s.serve("GET /kv/a HTTP/1.1\r\nX-Pad: " + std::string(s.limits.max_header, 'p') + "\r\n\r\n" + get("/kv/a"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::request_header_fields_too_large);
  CHECK(!rs[0].keep_alive());
  CHECK(s.node.commands.empty());
  CHECK(s.counters.refused_header == 1);
}

TEST_CASE("at the largest header limit a field too long for Beast is refused with 431, not thrown") {
  // Beast throws std::length_error for a field value of 64 KiB, out of the event loop.
  kv::http_limits l = server::small_limits();
  l.max_header = std::size_t{1} << 20;  // asked for more than the server allows
  server s(l);
  auto rs = s.serve("GET /kv/a HTTP/1.1\r\nX-Pad: " + std::string(70000, 'p') + "\r\n\r\n");
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::request_header_fields_too_large);
}

TEST_CASE("a request line over max_header is refused with 431") {
  server s;
  auto rs = s.serve(get("/kv/" + std::string(s.limits.max_header, 'k')));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::request_header_fields_too_large);
}

TEST_CASE("malformed HTTP is refused with 400 and the connection closes") {
  server s;
  auto rs = s.serve(std::string("\x00\xffNOT HTTP\r\n\r\n", 14) + get("/kv/a"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::bad_request);
  CHECK(!rs[0].keep_alive());
  CHECK(s.counters.refused_malformed == 1);
}

TEST_CASE("a chunked body is refused with 411, even a final chunk split after 0 CRLF (Beast 1.81 asserted on it)") {
  // Found by fuzz_kv (corpus/kv/regression-chunked-final-chunk-split): one byte per read,
  // "0\r\n" then the first byte of a trailer hit Beast's assert(n >= 5) and aborted.
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}}) {
    CAPTURE(chunk);
    server s;
    auto rs = s.serve("PUT /kv/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\na", chunk);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].result() == status::length_required);
    CHECK(outcome(rs[0]) == "not-applied");
    CHECK(!rs[0].keep_alive());
    CHECK(s.node.commands.empty());
  }
}

TEST_CASE("a client that leaves mid-request gets no answer and nothing is applied") {
  server s;
  auto rs = s.serve("PUT /kv/a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");
  CHECK(rs.empty());
  CHECK(s.node.commands.empty());
  CHECK(s.last.send_shut);
}

TEST_CASE("a command too large for one replication message is refused with 413 before it reaches the node") {
  kv::http_limits l = server::small_limits();
  l.max_command = kv::encoded_size(1, 100);  // below what max_body lets through
  server s(l);
  auto rs = s.serve(put("k", std::string(101, 'x')) + put("k", std::string(100, 'x')));
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].result() == status::payload_too_large);
  CHECK(outcome(rs[0]) == "not-applied");
  CHECK(rs[0].keep_alive());  // the request was read whole: the connection can go on
  CHECK(rs[1].result() == status::ok);  // exactly max_command bytes fits
  REQUIRE(s.node.commands.size() == 1);
  CHECK(s.node.commands[0].size() == l.max_command);
}

TEST_CASE("too_large from the node is 413 with the outcome not-applied") {
  server s;
  s.node.fail = [](std::size_t) { return make_error_code(raftkit::errc::too_large); };
  auto rs = s.serve(put("k", "v"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::payload_too_large);
  CHECK(outcome(rs[0]) == "not-applied");
}

TEST_CASE("node failures are 503 saying whether the command may have applied") {
  const std::vector<std::pair<raftkit::errc, std::string>> cases = {
      {raftkit::errc::not_leader, "not-applied"}, {raftkit::errc::busy, "not-applied"},
      {raftkit::errc::timeout, "unknown"},        {raftkit::errc::leadership_lost, "unknown"},
      {raftkit::errc::shutting_down, "unknown"},  {raftkit::errc::io_error, "unknown"},
  };
  for (const auto& [e, want] : cases) {
    CAPTURE(static_cast<int>(e));
    server s;
    s.node.fail = [e = e](std::size_t) { return make_error_code(e); };
    auto rs = s.serve(put("k", "v"));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].result() == status::service_unavailable);
    CHECK(outcome(rs[0]) == want);
    CHECK(rs[0][kv::http::field::retry_after] == "1");
  }
}

TEST_CASE("a node that never answers gets 503 with the outcome unknown after the request timeout") {
  kv::http_limits l = server::small_limits();
  l.request_timeout = std::chrono::milliseconds(1);
  server s(l);
  s.node.silent = true;
  auto rs = s.serve(put("k", "v") + get("/kv/k"));
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].result() == status::service_unavailable);
  CHECK(outcome(rs[0]) == "unknown");
  CHECK(rs[1].result() == status::service_unavailable);
}

TEST_CASE("refusals made without the node say not-applied") {
  server s;
  auto rs = s.serve(put("", "v") + get("/kv/bad%zz") + "PATCH /kv/a HTTP/1.1\r\n\r\n" + get("/nope") +
                    get("/kv/" + std::string(kv::max_key + 1, 'k')));
  REQUIRE(rs.size() == 5);
  CHECK(rs[0].result() == status::bad_request);
  CHECK(rs[1].result() == status::bad_request);
  CHECK(rs[2].result() == status::bad_request);
  CHECK(rs[3].result() == status::not_found);
  CHECK(rs[4].result() == status::bad_request);
  for (const auto& r : rs) CHECK(outcome(r) == "not-applied");
  CHECK(s.node.commands.empty());
}

TEST_CASE("status and metrics answer GET and refuse other methods") {
  server s;
  auto rs = s.serve(get("/status") + get("/metrics") + "POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(rs.size() == 3);
  CHECK(rs[0].result() == status::ok);
  CHECK(rs[0].body().find("\"role\":\"leader\"") != std::string::npos);
  CHECK(rs[1].result() == status::ok);
  CHECK(rs[1].body().find("raftkit_http_requests_total 2") != std::string::npos);
  CHECK(rs[2].result() == status::bad_request);
}

TEST_CASE("limits: the longest key with the largest body fits the engine's message budget") {
  for (std::size_t max_body : {std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20, std::size_t{8} << 20}) {
    CAPTURE(max_body);
    raftkit::node_config cfg;
    const std::size_t max_command = kv::fit_command_limits(cfg, max_body, raftkit::wire::default_max_frame_size);
    const std::size_t largest = kv::encoded_size(kv::max_key, max_body);
    CHECK(max_command >= largest);
    CHECK(max_command + raftkit::entry{}.wire_size() <= cfg.max_bytes_per_message);
  }
}

TEST_CASE("limits: a full replication message of the derived budget fits the transport's frame") {
  // The largest body a 64 KiB frame admits, then the two worst messages of that budget:
  // one entry of the largest command, and max_entries_per_message small entries.
  constexpr std::uint32_t frame = 64 << 10;
  std::size_t max_body = frame;
  raftkit::node_config cfg;
  for (;; --max_body) {
    cfg = raftkit::node_config{};
    cfg.max_bytes_per_message = 1;  // let the body decide the budget
    try {
      (void)kv::fit_command_limits(cfg, max_body, frame);
      break;
    } catch (const kv::startup_error& e) {
      CHECK(e.status == kv::exit_usage);
    }
  }
  CHECK(max_body > frame / 2);
  auto frame_size = [](std::size_t entries, std::size_t payload) {
    raftkit::message m;
    for (std::size_t i = 0; i < entries; ++i)
      m.entries.push_back(raftkit::entry{1, i + 1, raftkit::entry_type::normal,
                                         raftkit::shared_bytes::allocate(payload)});
    std::vector<std::byte> out;
    return raftkit::wire::encode_frame(m, 0, out);
  };
  const std::size_t overhead = raftkit::entry{}.wire_size();
  CHECK(frame_size(1, cfg.max_bytes_per_message - overhead) <= frame);
  const std::size_t n = cfg.max_entries_per_message;
  CHECK(frame_size(n, cfg.max_bytes_per_message / n - overhead) <= frame);
}

TEST_CASE("limits: a body too large for a transport frame is refused at start-up") {
  raftkit::node_config cfg;
  CHECK_THROWS_AS(kv::fit_command_limits(cfg, raftkit::wire::default_max_frame_size, raftkit::wire::default_max_frame_size),
                  kv::startup_error);
  CHECK_THROWS_AS(kv::fit_command_limits(cfg, SIZE_MAX, raftkit::wire::default_max_frame_size), kv::startup_error);
}

TEST_CASE("limits: HTTP connections leave descriptors for the node") {
  CHECK(kv::fit_connection_limit(1024, 64, 3) == 64 - kv::reserved_descriptors(3));
  CHECK(kv::fit_connection_limit(10, 1 << 20, 3) == 10);
  try {
    (void)kv::fit_connection_limit(10, kv::reserved_descriptors(3), 3);
    FAIL("a limit with no descriptor left for HTTP was accepted");
  } catch (const kv::startup_error& e) {
    CHECK(e.status == kv::exit_descriptors);
  }
}

TEST_CASE("command line: bad addresses and clusters are usage errors naming the problem") {
  for (const char* bad : {"", "1=h", "0=h:1", "1=h:1,1=h:2", "x=h:1", "1=h:65536", "1=h:-1", "1=:1"}) {
    CAPTURE(bad);
    try {
      (void)kv::parse_cluster(bad);
      FAIL("accepted");
    } catch (const kv::startup_error& e) {
      CHECK(e.status == kv::exit_usage);
      CHECK(std::string(e.what()).size() > 0);
    }
  }
  const auto m = kv::parse_cluster("1=a:1,2=b:2");
  CHECK(m.size() == 2);
  CHECK(m.at(2).host == "b");
  CHECK(m.at(2).port == 2);
}

}  // TEST_SUITE
