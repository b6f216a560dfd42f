// libFuzzer target for raftkit-kv's HTTP handling (examples/kv/http_handler.hpp), run in
// memory: the bytes are what one client sends on one connection, served by the same
// serve_connection and handler as the server, over the in-memory stream and fake node of
// examples/kv/testing.hpp. See README.md.
//
// Input: byte 0 is how many bytes each read hands out (0: all at once), so requests split
// at every point; byte 1 picks which proposals the fake node fails and with which error;
// the rest is the client's stream. Whatever it is, the server must answer with whole
// HTTP responses, refuse with a proper status, never propose more than fits one
// replication message, answer every proposal, and close only after a closing response or
// at the end of the input. A violated rule aborts (libFuzzer keeps the input).
#include <boost/json/src.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <system_error>

#include "http_handler.hpp"
#include "testing.hpp"

namespace {

using kv::http::status;

constexpr std::array<raftkit::errc, 8> faults = {
    raftkit::errc::not_leader,      raftkit::errc::busy,          raftkit::errc::too_large, raftkit::errc::timeout,
    raftkit::errc::leadership_lost, raftkit::errc::shutting_down, raftkit::errc::dropped,   raftkit::errc::io_error,
};

/// Small limits, so short inputs reach every refusal; max_command is below what max_body
/// lets through, so the command check is reachable too.
kv::http_limits fuzz_limits() {
  kv::http_limits l;
  l.max_body = 512;
  l.max_header = 512;
  l.max_command = kv::encoded_size(8, 256);
  return l;
}

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static boost::asio::io_context io;  // one for every input: run() leaves it empty
  const kv::http_limits limits = fuzz_limits();
  kv::http_counters counters;
  kv::testing::fake_node node(io.get_executor());
  const std::uint8_t mask = data[1];
  node.fail = [mask](std::size_t n) -> std::error_code {
    if (!((mask >> (n % 8)) & 1)) return {};
    return make_error_code(faults[(n + mask) % faults.size()]);
  };
  kv::handler<kv::testing::fake_node> h(node, limits, counters);
  const auto run = kv::testing::serve_bytes(io, h, std::string(reinterpret_cast<const char*>(data + 2), size - 2), data[0]);

  bool clean = false;
  const auto rs = kv::testing::parse_responses(run.output, clean);
  require(clean);                                 // whole responses, nothing else
  require(run.send_shut);                         // every connection ends with a close
  require(node.commands.size() <= rs.size());     // every proposal was answered
  require(rs.size() <= counters.requests + 1);    // one answer per request read, plus a refusal
  for (const auto& c : node.commands) {
    require(c.size() <= limits.max_command);      // nothing oversized reached the node
    require(kv::decode(c).has_value());           // and what did is a command
  }
  for (std::size_t i = 0; i < rs.size(); ++i) {
    const auto& r = rs[i];
    const std::string outcome(r[kv::outcome_header]);
    switch (r.result()) {
      case status::ok: break;
      case status::not_found: require(outcome.empty() || outcome == "not-applied"); break;
      case status::bad_request:
      case status::length_required:
      case status::payload_too_large:
      case status::request_header_fields_too_large: require(outcome == "not-applied"); break;
      case status::service_unavailable: require(outcome == "not-applied" || outcome == "unknown"); break;
      default: std::abort();  // 500 would mean a command that did not decode
    }
    require(r.keep_alive() || i + 1 == rs.size());  // nothing after a closing response
  }
  // The connection ends early only after a closing response; otherwise it read everything.
  require(run.input_consumed || (!rs.empty() && !rs.back().keep_alive()));
  return 0;
}
