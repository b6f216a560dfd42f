#pragma once
// raftkit-kv's start-up rules, apart from main so tests can check them: its exit statuses,
// the parsing of addresses, and how its size limits fit together (an HTTP body, the
// command it becomes, the engine's message budget, the transport's frame).

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "http_handler.hpp"
#include "kv_machine.hpp"
#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/config.hpp"
#include "raftkit/message.hpp"
#include "raftkit/wire.hpp"

namespace kv {

/// raftkit-kv's exit statuses (also listed by --help). A start-up failure prints one line
/// on stderr naming the problem and exits with one of these.
enum exit_status : int {
  exit_ok = 0,          ///< stopped by SIGINT or SIGTERM
  exit_failure = 1,     ///< an unexpected error (the line says which)
  exit_usage = 2,       ///< bad command line: unknown flag, bad value, limits that do not fit
  exit_listen = 3,      ///< cannot listen on the HTTP or Raft address (in use, not local, denied)
  exit_locked = 4,      ///< the data directory is in use by another process
  exit_corrupt = 5,     ///< the data directory holds a corrupt log or hard state
  exit_data_dir = 6,    ///< the data directory cannot be used: cannot create, not writable, I/O error
  exit_descriptors = 7,  ///< RLIMIT_NOFILE leaves too few file descriptors to serve
  exit_identity = 8     ///< the data directory belongs to another node id or cluster, or the start contradicts it
};

/// The --help text that lists the exit statuses.
inline constexpr std::string_view exit_status_help =
    "Exit status: 0 stopped by a signal; 1 unexpected error; 2 bad command line; 3 cannot listen\n"
    "(address in use, not local or not permitted); 4 data directory locked by another process;\n"
    "5 data directory corrupt; 6 data directory unusable (cannot create, not writable, I/O error);\n"
    "7 too few file descriptors (RLIMIT_NOFILE); 8 the data directory belongs to another node id or\n"
    "cluster (or --join/--cluster contradicts it). Each failure prints one line on stderr.";

/// A start-up failure: the exit status and the one line that explains it.
struct startup_error : std::runtime_error {
  startup_error(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

/// A decimal number in [min, max]; `what` names it in the error.
inline std::uint64_t parse_number(std::string_view s, std::uint64_t min, std::uint64_t max, std::string_view what) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < min || v > max)
    throw startup_error(exit_usage, "bad " + std::string(what) + " (want a number in " + std::to_string(min) + ".." +
                                        std::to_string(max) + ", got '" + std::string(s) + "')");
  return v;
}

/// host:port (the host may be a name; the last colon separates the port).
inline raftkit::asio::peer_address parse_address(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    throw startup_error(exit_usage, "bad address '" + std::string(s) + "' (want host:port)");
  const auto port = parse_number(s.substr(colon + 1), 0, 65535, "port in '" + std::string(s) + "'");
  return {std::string(s.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

/// id=host:port,... with distinct non-zero ids.
inline raftkit::asio::cluster_map parse_cluster(std::string_view s) {
  raftkit::asio::cluster_map map;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      throw startup_error(exit_usage, "bad cluster member '" + std::string(item) + "' (want id=host:port)");
    const auto id = parse_number(item.substr(0, eq), 1, UINT64_MAX, "member id");
    if (!map.emplace(id, parse_address(item.substr(eq + 1))).second)
      throw startup_error(exit_usage, "member id " + std::to_string(id) + " appears twice in --cluster");
  }
  if (map.empty()) throw startup_error(exit_usage, "--cluster names no member");
  return map;
}

/// Bytes of a frame carrying AppendEntries with `entries` entries of empty payload.
inline std::size_t append_frame_size(std::size_t entries) {
  raftkit::message m;
  m.type = raftkit::message_type::append_entries;
  for (std::size_t i = 0; i < entries; ++i) m.entries.push_back(raftkit::entry{});
  std::vector<std::byte> out;
  return raftkit::wire::encode_frame(m, 0, out);
}

/// Fits the size limits together, or throws startup_error(exit_usage):
///  - the engine's message budget (cfg.max_bytes_per_message) grows, if it must, to hold
///    the largest command the HTTP limits let through (a key of max_key bytes and a body of
///    max_body), so every body accepted can be replicated;
///  - a message of that budget must fit one transport frame of `max_frame` bytes, or the
///    transport would drop it on every retry and replication would stall.
/// Returns the largest command (what the handler lets through: http_limits::max_command).
inline std::size_t fit_command_limits(raftkit::node_config& cfg, std::size_t max_body, std::uint32_t max_frame) {
  auto refuse = [&](const std::string& why) {
    throw startup_error(exit_usage, "--max-body " + std::to_string(max_body) + " cannot be replicated: " + why +
                                        ", over the transport's frame of " + std::to_string(max_frame) + " bytes");
  };
  if (max_body >= max_frame) refuse("the body alone is " + std::to_string(max_body) + " bytes");  // (and sums below could overflow)
  const std::size_t entry_overhead = raftkit::entry{}.wire_size();  // the engine's own accounting
  cfg.max_bytes_per_message = std::max(cfg.max_bytes_per_message, kv::encoded_size(max_key, max_body) + entry_overhead);
  // What a full message costs on the wire beyond the engine's accounting: the fixed fields,
  // and per entry what its encoding takes beyond wire_size().
  const std::size_t empty = append_frame_size(0);
  const std::size_t per_entry = append_frame_size(1) - empty;
  const std::size_t extra = per_entry > entry_overhead ? per_entry - entry_overhead : 0;
  const std::size_t worst = empty + cfg.max_bytes_per_message + cfg.max_entries_per_message * extra;
  if (worst > max_frame) refuse("a replication message could take " + std::to_string(worst) + " bytes");
  return cfg.max_bytes_per_message - entry_overhead;
}

/// File descriptors kept for the node and the server besides HTTP connections: standard
/// streams, the event loop, listeners, the log store's files, and an inbound and an
/// outbound connection per peer (twice, for reconnections that overlap).
inline std::size_t reserved_descriptors(std::size_t members) { return 32 + 4 * members; }

/// The connection bound that leaves reserved_descriptors free under a descriptor limit
/// (so a flood of clients cannot starve the log store or the peers of descriptors), or
/// throws startup_error(exit_descriptors) if none are left.
inline std::size_t fit_connection_limit(std::size_t wanted, std::uint64_t descriptor_limit, std::size_t members) {
  const std::size_t reserved = reserved_descriptors(members);
  if (descriptor_limit <= reserved)
    throw startup_error(exit_descriptors, "RLIMIT_NOFILE is " + std::to_string(descriptor_limit) + ": " +
                                              std::to_string(reserved) +
                                              " descriptors are needed besides HTTP connections (raise ulimit -n)");
  return std::min<std::uint64_t>(wanted, descriptor_limit - reserved);
}

}  // namespace kv
