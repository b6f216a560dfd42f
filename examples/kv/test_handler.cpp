// kv_handler: raftkit-kv's HTTP handling and start-up limits, driven in memory (no sockets):
// raw request bytes go through serve_connection to a fake node; the responses are parsed
// back. The socket-level defences (time limits, the connection bound, EMFILE) are tested
// against a real process by test_kv_hostile.py.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

// Boost.JSON compiled into this program (header-only mode).
#include <boost/json/src.hpp>

#include <string>
#include <utility>
#include <vector>

#include "raftkit/config.hpp"

#include "http_handler.hpp"
#include "members.hpp"
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

/// A server with the membership endpoints: node 1 of three, addresses for all (an HTTP one
/// for itself only), and a fake way to reach a joining node that records what it was sent.
struct member_server {
  member_server()
      : node(io.get_executor()),
        dir(1, {{1, {"127.0.0.1:7001", "127.0.0.1:8001"}}, {2, {"127.0.0.1:7002", ""}}, {3, {"127.0.0.1:7003", ""}}}),
        support{dir,
                [this](std::string http, std::string body) -> boost::asio::awaitable<std::string> {
                  introduced.emplace_back(std::move(http), std::move(body));
                  co_return introduce_error;
                }},
        h(node, limits, counters, {}, nullptr, &support) {
    dir.set_peer = [this](raftkit::node_id id, const std::string& raft) { peers_set.emplace_back(id, raft); };
  }

  std::vector<kv::response> serve(std::string input) {
    bool clean = false;
    auto rs = kv::testing::parse_responses(kv::testing::serve_bytes(io, h, std::move(input)).output, clean);
    CHECK(clean);
    return rs;
  }

  /// The JSON body of a response.
  static boost::json::object body(const kv::response& r) { return boost::json::parse(r.body()).as_object(); }

  boost::asio::io_context io;
  kv::http_limits limits;
  kv::http_counters counters;
  fake_node node;
  kv::directory dir;
  std::vector<std::pair<std::string, std::string>> introduced;  // (http, body)
  std::string introduce_error;
  std::vector<std::pair<raftkit::node_id, std::string>> peers_set;
  kv::membership_support support;
  kv::handler<fake_node> h;
};

std::string request(const std::string& method, const std::string& path, const std::string& body = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string new_learner = R"({"id":4,"raft":"127.0.0.1:7004","http":"127.0.0.1:8004","role":"learner"})";

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

TEST_CASE("GET reads through the node's read at the consistency asked for, linearizable by default") {
  server s;
  auto rs = s.serve(put("k", "v") + get("/kv/k") + get("/kv/k?consistency=lease") + get("/kv/k?consistency=local") +
                    get("/kv/k?consistency=linearizable") + get("/kv/missing?consistency=lease"));
  REQUIRE(rs.size() == 6);
  for (std::size_t i = 1; i <= 4; ++i) CHECK((rs[i].result() == status::ok && rs[i].body() == "v"));
  CHECK(rs[5].result() == status::not_found);
  using rc = raftkit::read_consistency;
  CHECK(s.node.reads == std::vector<rc>{rc::linearizable, rc::lease, rc::local, rc::linearizable, rc::lease});
  CHECK(s.counters.reads[0] == 2);
  CHECK(s.counters.reads[1] == 2);
  CHECK(s.counters.reads[2] == 1);
}

TEST_CASE("a bad consistency, or one on a write, is refused with 400 before it reaches the node") {
  server s;
  auto rs = s.serve(get("/kv/k?consistency=eventual") + get("/kv/k?consistency=") +
                    "PUT /kv/k?consistency=lease HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
  REQUIRE(rs.size() == 3);
  for (const auto& r : rs) {
    CHECK(r.result() == status::bad_request);
    CHECK(outcome(r) == "not-applied");
  }
  CHECK(s.node.commands.empty());
}

TEST_CASE("a failed read says not-applied whatever the error (a read changes nothing); a lease read refused by configuration is 400") {
  for (auto e : {raftkit::errc::timeout, raftkit::errc::leadership_lost, raftkit::errc::not_leader}) {
    CAPTURE(static_cast<int>(e));
    server s;
    s.node.fail = [e](std::size_t) { return make_error_code(e); };
    auto rs = s.serve(get("/kv/k"));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].result() == status::service_unavailable);
    CHECK(outcome(rs[0]) == "not-applied");
  }
  server s;
  s.node.fail = [](std::size_t) { return make_error_code(raftkit::errc::not_supported); };
  auto rs = s.serve(get("/kv/k?consistency=lease"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::bad_request);
}

TEST_CASE("a write refused by the node says not-applied exactly when raftkit::may_have_applied says so") {
  // transferring and stopped were missing from the server's own list before it used the
  // library's rule.
  for (auto e : {raftkit::errc::transferring, raftkit::errc::stopped, raftkit::errc::unknown_member,
                 raftkit::errc::dropped, raftkit::errc::timeout, raftkit::errc::apply_failed}) {
    CAPTURE(static_cast<int>(e));
    server s;
    s.node.fail = [e](std::size_t) { return make_error_code(e); };
    auto rs = s.serve(put("k", "v"));
    REQUIRE(rs.size() == 1);
    CHECK(outcome(rs[0]) == (raftkit::may_have_applied(e) ? "unknown" : "not-applied"));
  }
}

TEST_CASE("POST /admin/transfer hands leadership to the node named, or to any; bad targets are 400") {
  server s;
  auto post = [](const std::string& path) { return "POST " + path + " HTTP/1.1\r\nContent-Length: 0\r\n\r\n"; };
  auto rs = s.serve(post("/admin/transfer?to=2") + post("/admin/transfer?to=any") + post("/admin/transfer") +
                    post("/admin/transfer?to=0") + post("/admin/transfer?to=x2") + get("/admin/transfer?to=2"));
  REQUIRE(rs.size() == 6);
  CHECK(rs[0].result() == status::ok);
  CHECK(rs[0].body().find("\"leader\":") != std::string::npos);
  CHECK(rs[1].result() == status::ok);
  for (std::size_t i = 2; i < 6; ++i) CHECK(rs[i].result() == status::bad_request);
  CHECK(s.node.transfers == std::vector<raftkit::node_id>{2, raftkit::any_node});
  CHECK(s.node.commands.empty());
}

TEST_CASE("a transfer the node refuses is 409 on a follower, 400 for an unknown member, 503 when it timed out") {
  const std::vector<std::pair<raftkit::errc, status>> cases = {
      {raftkit::errc::not_leader, status::conflict},
      {raftkit::errc::transferring, status::conflict},
      {raftkit::errc::unknown_member, status::bad_request},
      {raftkit::errc::timeout, status::service_unavailable},
  };
  for (const auto& [e, want] : cases) {
    CAPTURE(static_cast<int>(e));
    server s;
    s.node.transfer_error = make_error_code(e);
    auto rs = s.serve("POST /admin/transfer?to=3 HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].result() == want);
  }
}

TEST_CASE("GET /admin/members lists voters, learners and outgoing with their addresses, the config index and the leader") {
  member_server s;
  s.node.config.learners.push_back({4, kv::encode_context({"127.0.0.1:7004", "127.0.0.1:8004"})});
  s.node.config.index = 12;
  auto rs = s.serve(get("/admin/members"));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::ok);
  const auto o = member_server::body(rs[0]);
  CHECK(o.at("index").to_number<std::uint64_t>() == 12);
  CHECK(o.at("joint").as_bool() == false);
  CHECK(o.at("leader").to_number<std::uint64_t>() == 1);
  const auto& voters = o.at("voters").as_array();
  REQUIRE(voters.size() == 3);
  CHECK(voters[0].at("raft").as_string() == "127.0.0.1:7001");
  CHECK(voters[0].at("http").as_string() == "127.0.0.1:8001");
  CHECK(voters[1].at("http").is_null());  // an initial member's HTTP address is not known
  const auto& learners = o.at("learners").as_array();
  REQUIRE(learners.size() == 1);
  CHECK(learners[0].at("id").to_number<std::uint64_t>() == 4);
  CHECK(learners[0].at("http").as_string() == "127.0.0.1:8004");
  CHECK(o.at("outgoing").as_array().empty());
}

TEST_CASE("POST /admin/members tells the new node where the members listen, then adds it with its addresses as context") {
  member_server s;
  auto rs = s.serve(request("POST", "/admin/members", new_learner) +
                    request("POST", "/admin/members",
                            R"({"id":5,"raft":"127.0.0.1:7005","http":"127.0.0.1:8005","role":"voter"})"));
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].result() == status::ok);
  CHECK(rs[1].result() == status::ok);
  REQUIRE(s.introduced.size() == 2);
  CHECK(s.introduced[0].first == "127.0.0.1:8004");
  const auto intro = boost::json::parse(s.introduced[0].second).as_object();
  CHECK(intro.at("to").to_number<std::uint64_t>() == 4);
  CHECK(intro.at("members").as_array().size() == 3);
  CHECK(intro.at("members").as_array()[2].at("raft").as_string() == "127.0.0.1:7003");
  REQUIRE(s.node.changes.size() == 2);
  CHECK(s.node.changes[0].type == raftkit::member_change_type::add_learner);
  CHECK(s.node.changes[0].id == 4);
  CHECK(kv::decode_context(s.node.changes[0].context) == kv::addresses{"127.0.0.1:7004", "127.0.0.1:8004"});
  CHECK(s.node.changes[1].type == raftkit::member_change_type::add_voter);
  const auto o = member_server::body(rs[1]);
  CHECK(o.at("change_index").to_number<std::uint64_t>() > 0);
  CHECK(o.at("learners").as_array().size() == 1);
  CHECK(o.at("voters").as_array().size() == 4);
}

TEST_CASE("a bad member is 400 and reaches neither the new node nor the engine") {
  member_server s;
  for (const std::string& body : {std::string("not json"), std::string(R"({"id":0,"raft":"a:1","http":"a:2","role":"voter"})"),
                                 std::string(R"({"id":4,"raft":"a","http":"a:2","role":"voter"})"),
                                 std::string(R"({"id":4,"raft":"a:1","http":"a:70000","role":"voter"})"),
                                 std::string(R"({"id":4,"raft":"a:1","http":"a:2","role":"boss"})")}) {
    CAPTURE(body);
    auto rs = s.serve(request("POST", "/admin/members", body));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].result() == status::bad_request);
  }
  auto rs = s.serve(request("DELETE", "/admin/members/x") + request("DELETE", "/admin/members/0") +
                    request("GET", "/admin/members/2/promote") + request("POST", "/admin/members/2") +
                    request("PUT", "/admin/members"));
  for (const auto& r : rs) CHECK(r.result() == status::bad_request);
  CHECK(s.introduced.empty());
  CHECK(s.node.changes.empty());
}

TEST_CASE("DELETE /admin/members/N removes a member, POST /admin/members/N/promote promotes a learner") {
  member_server s;
  s.node.config.learners.push_back({4, kv::encode_context({"127.0.0.1:7004", "127.0.0.1:8004"})});
  auto rs = s.serve(request("POST", "/admin/members/4/promote") + request("DELETE", "/admin/members/2"));
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].result() == status::ok);
  CHECK(rs[1].result() == status::ok);
  REQUIRE(s.node.changes.size() == 2);
  CHECK(s.node.changes[0].type == raftkit::member_change_type::promote);
  CHECK(s.node.changes[1].type == raftkit::member_change_type::remove);
  CHECK(s.node.changes[1].id == 2);
  const auto voters = member_server::body(rs[1]).at("voters").as_array();
  CHECK(voters.size() == 3);  // 1, 3 and the promoted 4
  CHECK(s.introduced.empty());  // members already: nobody to tell
}

TEST_CASE("membership changes on a follower are 409 with the leader's id and HTTP address, and nobody is told") {
  member_server s;
  s.node.role = raftkit::role::follower;
  s.node.leader = 1;
  auto rs = s.serve(request("POST", "/admin/members", new_learner));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::conflict);
  CHECK(rs[0]["X-Raftkit-Leader"] == "1");
  CHECK(rs[0]["X-Raftkit-Leader-Http"] == "127.0.0.1:8001");
  CHECK(outcome(rs[0]) == "not-applied");
  CHECK(member_server::body(rs[0]).at("may_have_applied").as_bool() == false);
  CHECK(s.introduced.empty());
  CHECK(s.node.changes.empty());
}

TEST_CASE("a new node that cannot be reached is 502, not applied, and the configuration is left alone") {
  member_server s;
  s.introduce_error = "Connection refused";
  auto rs = s.serve(request("POST", "/admin/members", new_learner));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::bad_gateway);
  CHECK(outcome(rs[0]) == "not-applied");
  CHECK(std::string(member_server::body(rs[0]).at("error").as_string()).find("Connection refused") != std::string::npos);
  CHECK(s.node.changes.empty());
}

TEST_CASE("a failed change: its errc's message, its status, and whether it may have applied") {
  const std::vector<std::pair<raftkit::errc, status>> cases = {
      {raftkit::errc::not_leader, status::conflict},
      {raftkit::errc::membership_change_in_progress, status::conflict},
      {raftkit::errc::invalid_membership_change, status::bad_request},
      {raftkit::errc::busy, status::service_unavailable},
      {raftkit::errc::transferring, status::service_unavailable},
      {raftkit::errc::catch_up_failed, status::service_unavailable},
      {raftkit::errc::leadership_lost, status::service_unavailable},
      {raftkit::errc::shutting_down, status::service_unavailable},
  };
  for (const auto& [e, want] : cases) {
    CAPTURE(static_cast<int>(e));
    member_server s;
    s.node.change_error = make_error_code(e);
    auto rs = s.serve(request("DELETE", "/admin/members/3"));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].result() == want);
    const auto o = member_server::body(rs[0]);
    CHECK(o.at("error").as_string() == make_error_code(e).message());
    CHECK(o.at("may_have_applied").as_bool() == raftkit::may_have_applied(e));
    CHECK(outcome(rs[0]) == (raftkit::may_have_applied(e) ? "unknown" : "not-applied"));
  }
}

TEST_CASE("PUT /admin/peers: a node without a configuration takes the members' addresses; one with a configuration refuses") {
  member_server s;
  s.node.config = {};
  const std::string intro = kv::introduction(1, {{1, {"127.0.0.1:7001", "127.0.0.1:8001"}}, {5, {"127.0.0.1:7005", ""}}});
  auto rs = s.serve(request("PUT", "/admin/peers", kv::introduction(9, {{5, {"127.0.0.1:7005", ""}}})) +
                    request("PUT", "/admin/peers", intro));
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].result() == status::bad_request);  // for another node
  CHECK(rs[1].result() == status::ok);
  CHECK(s.peers_set == std::vector<std::pair<raftkit::node_id, std::string>>{{5, "127.0.0.1:7005"}});
  CHECK(s.dir.book().at(5).raft == "127.0.0.1:7005");
  s.node.config = fake_node::initial_config();
  rs = s.serve(request("PUT", "/admin/peers", intro));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].result() == status::conflict);
}

TEST_CASE("the directory makes the transport's peers the configuration's members, learning addresses from contexts") {
  kv::directory d(1, {{1, {"127.0.0.1:7001", ""}}, {2, {"127.0.0.1:7002", ""}}, {3, {"127.0.0.1:7003", ""}}});
  std::vector<std::string> calls;
  int saves = 0;
  d.set_peer = [&](raftkit::node_id id, const std::string& raft) { calls.push_back("set " + std::to_string(id) + " " + raft); };
  d.remove_peer = [&](raftkit::node_id id) { calls.push_back("remove " + std::to_string(id)); };
  d.save = [&](const auto&) { ++saves; };
  raftkit::membership m = fake_node::initial_config();
  d.follow(m);
  CHECK(calls.empty());  // the transport starts with these peers
  m.learners.push_back({4, kv::encode_context({"127.0.0.1:7004", "127.0.0.1:8004"})});
  d.follow(m);
  CHECK(calls == std::vector<std::string>{"set 4 127.0.0.1:7004"});
  // A new node replaying the log goes through configurations older than its leader: they
  // do not drop the members they do not list yet.
  kv::directory fresh(6, {{6, {"127.0.0.1:7006", ""}}});
  fresh.remove_peer = d.remove_peer;
  fresh.introduce({{1, {"127.0.0.1:7001", ""}}, {5, {"127.0.0.1:7005", ""}}});
  calls.clear();
  fresh.follow(fake_node::initial_config());
  raftkit::membership with6 = fake_node::initial_config();
  with6.learners.push_back({6, {}});
  fresh.follow(with6);
  CHECK(calls.empty());
  CHECK(fresh.peers().contains(5));
  CHECK(saves == 1);
  m.voters.erase(m.voters.begin() + 1);  // 2 leaves
  m.outgoing = fake_node::initial_config().voters;  // while joint, C_old still counts
  calls.clear();
  d.follow(m);
  CHECK(calls.empty());
  m.outgoing.clear();
  d.follow(m, 3);  // (3 leads: it would be kept)
  CHECK(calls == std::vector<std::string>{"remove 2"});
  CHECK(d.peers().size() == 2);  // 3 and 4
  m.voters.pop_back();  // 3 leaves, but this node still hears from it as the leader
  calls.clear();
  d.follow(m, 3);
  CHECK(calls.empty());
  d.follow(m, 1);  // 1 leads now: 3 goes
  CHECK(calls == std::vector<std::string>{"remove 3"});
  calls.clear();
  d.follow({});  // no configuration (a node that has not joined yet): nothing changes
  CHECK(calls.empty());
}

TEST_CASE("the data directory's record: another id, another cluster, --join or --cluster against it are refused") {
  using kv::reconcile;
  kv::start_request first;
  first.id = 2;
  first.cluster = {{1, "h:1"}, {2, "h:2"}, {3, "h:3"}};
  first.http = "h:8002";
  auto r = reconcile(std::nullopt, first);
  REQUIRE(std::holds_alternative<kv::node_record>(r));
  const kv::node_record rec = std::get<kv::node_record>(r);
  CHECK(rec.initial == std::vector<raftkit::node_id>{1, 2, 3});
  CHECK(kv::node_record::parse(rec.to_string())->book.at(2).http == "h:8002");
  auto refused = [&](kv::start_request s, const std::string& needle) {
    auto out = reconcile(rec, s);
    REQUIRE(std::holds_alternative<kv::record_conflict>(out));
    CHECK_MESSAGE(std::get<kv::record_conflict>(out).why.find(needle) != std::string::npos, std::get<kv::record_conflict>(out).why);
  };
  kv::start_request again = first;
  again.id = 3;
  refused(again, "belongs to node 2");
  again = first;
  again.cluster.erase(3);
  refused(again, "--cluster lists members 1,2");
  again = first;
  again.cluster.clear();
  again.join = true;
  refused(again, "--join");
  again.join = false;  // a restart from the record alone
  CHECK(std::holds_alternative<kv::node_record>(reconcile(rec, again)));

  kv::start_request join;
  join.id = 4;
  join.join = true;
  join.raft = "h:4";
  auto j = reconcile(std::nullopt, join);
  REQUIRE(std::holds_alternative<kv::node_record>(j));
  const kv::node_record joined = std::get<kv::node_record>(j);
  CHECK(joined.initial.empty());
  kv::start_request with_cluster;
  with_cluster.id = 4;
  with_cluster.cluster = {{4, "h:4"}};
  auto c = reconcile(joined, with_cluster);
  CHECK(std::holds_alternative<kv::record_conflict>(c));
  CHECK(std::holds_alternative<kv::node_record>(reconcile(joined, join)));  // still waiting, or joined: resumes
  kv::start_request nothing;
  nothing.id = 5;
  CHECK(std::holds_alternative<kv::record_conflict>(reconcile(std::nullopt, nothing)));
  join.raft.clear();
  CHECK(std::holds_alternative<kv::record_conflict>(reconcile(std::nullopt, join)));  // --join needs --raft
}

TEST_CASE("status shows pre-vote, check-quorum, the lease and the read counters; metrics the reads by consistency and elections won") {
  server s;
  auto rs = s.serve(get("/kv/a?consistency=local") + get("/status") + get("/metrics"));
  REQUIRE(rs.size() == 3);
  const auto st = boost::json::parse(rs[1].body()).as_object();
  for (const char* k : {"pre_vote", "check_quorum", "lease_valid", "lease_ms_left", "pending_reads", "reads",
                        "read_index_calls", "lease_reads", "read_rounds", "elections", "elections_won", "transfers"})
    CHECK_MESSAGE(st.contains(k), k);
  CHECK(st.at("reads").as_object().at("local").as_int64() == 1);
  const std::string& m = rs[2].body();
  for (const char* line : {"raftkit_reads_total{consistency=\"local\"} 1", "raftkit_reads_total{consistency=\"lease\"} 0",
                           "raftkit_reads_total{consistency=\"linearizable\"} 0", "raftkit_elections_won_total 0",
                           "raftkit_elections_total 0", "raftkit_lease_valid 0", "raftkit_pre_vote 0"})
    CHECK_MESSAGE(m.find(line) != std::string::npos, line);
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
