#pragma once
/// \file The messages nodes exchange. One flat struct serves every type (as in etcd
/// raft): a transport moves and serialises one shape, and each field's meaning per
/// type is documented below. Types 5-7 are reserved for snapshots and leadership
/// transfer so the wire numbering never changes.

#include <cstdint>

#include "raftkit/types.hpp"

namespace raftkit {

/// Message types. Values are the wire encoding: never renumber.
enum class message_type : std::uint8_t {
  request_vote = 1,          ///< §5.2: candidate asks for a vote (or a pre-vote, flag)
  request_vote_reply = 2,    ///< §5.2: vote granted or not
  append_entries = 3,        ///< §5.3: entries after (log_index, log_term); also heartbeat
  append_entries_reply = 4,  ///< §5.3: success with match index, or rejection with hint
  install_snapshot = 5,      ///< §7: one chunk of the leader's snapshot
  install_snapshot_reply = 6,///< §7: the bytes the follower holds, or that it installed it
  timeout_now = 7,           ///< leadership transfer: start an election now (thesis §3.10)
  forward_proposal = 8,      ///< a follower forwards a client proposal to the leader
  forward_reply = 9,         ///< the leader says where the forwarded proposal went
  read_index = 10,           ///< a follower asks the leader for a read index (thesis §6.4)
  read_index_reply = 11,     ///< the leader's read index, or why it refused
};

inline constexpr std::uint8_t max_message_type = 11;

/// Flags carried in `message::flags`.
namespace message_flags {
inline constexpr std::uint32_t pre_vote = 1u << 0;  ///< a pre-vote request or reply (thesis §9.6)
inline constexpr std::uint32_t transfer = 1u << 1;  ///< an election the leader asked for (§3.10): voters ignore stickiness
inline constexpr std::uint32_t lease = 1u << 2;     ///< a read_index a leader may answer from its lease (§6.4.1)
inline constexpr std::uint32_t last_chunk = 1u << 3; ///< install_snapshot: the final chunk; reply: installed (or already covered)
}  // namespace message_flags

/// One Raft message. Each field carries one meaning; a field a type does not use is 0.
///
/// | type                 | log_index          | log_term        | commit        | reject  | other fields                                   |
/// |----------------------|--------------------|-----------------|---------------|---------|------------------------------------------------|
/// | request_vote         | last log index     | last log term   |               |         | flags: pre_vote, transfer                      |
/// | request_vote_reply   |                    |                 |               | !grant  | flags: pre_vote                                |
/// | append_entries       | prev log index     | prev log term   | leader commit |         | entries                                        |
/// | append_entries_reply | match / rejected   |                 |               | reject  | received_index; hint_index / hint_term         |
/// | timeout_now          |                    |                 |               |         |                                                |
/// | forward_proposal     |                    |                 |               |         | request_id (first of entries.size()), entries  |
/// | forward_reply        | index of the first | their term      |               | refused | request_id, code (errc) when refused           |
/// | install_snapshot     | snapshot's index   | snapshot's term |               |         | snapshot_offset/size/crc, data, config, flags: last_chunk |
/// | install_snapshot_reply | snapshot's index |                 |               |         | snapshot_offset = bytes held; flags: last_chunk = installed |
/// | read_index           |                    |                 |               |         | request_id, flags: lease                       |
/// | read_index_reply     | the read index     |                 |               | refused | request_id, code (errc) when refused           |
///
/// - `boot_id` is the sender's incarnation (random per start), in every message: a
///   follower can tell a restarted leader from the one it forwarded to.
/// - `received_index` (append_entries_reply): the highest index the follower holds that
///   it has verified against this leader's log in this term, durable or not. `log_index`
///   (match) covers only what is also durable. The leader tells a slow disk (received,
///   not yet durable) from lost messages (not received) with it.
/// - `context` is a leader's latest heartbeat round (in every message it sends) and the
///   highest round a follower has seen from its leader in this term (in every reply): a
///   round echoed by a majority confirms leadership for pending reads (thesis §6.4).
/// - A pre-vote request carries the term the candidate would campaign in, without having
///   moved to it; a granted pre-vote reply carries that same term.
/// - A forward_proposal carries a batch: entry k has request id `request_id + k`; the
///   reply places entry k at `log_index + k`, or refuses the whole batch with `code`.
struct message {
  message_type type = message_type::append_entries;
  node_id from = no_node;
  node_id to = no_node;
  term_t term = 0;
  index_t log_index = 0;
  term_t log_term = 0;
  index_t commit = 0;
  bool reject = false;
  std::uint32_t flags = 0;
  index_t hint_index = 0;
  term_t hint_term = 0;
  std::uint64_t request_id = 0;
  std::uint64_t boot_id = 0;
  index_t received_index = 0;
  std::uint32_t code = 0;
  std::uint64_t context = 0;
  std::uint64_t snapshot_offset = 0;
  std::uint64_t snapshot_size = 0;
  std::uint32_t snapshot_crc = 0;
  shared_bytes data;    ///< install_snapshot: the chunk's bytes
  shared_bytes config;  ///< install_snapshot: the configuration the snapshot records
  entry_batch entries;

  friend bool operator==(const message&, const message&) = default;
};

/// A short name for a message type, for traces and errors.
constexpr const char* to_string(message_type t) noexcept {
  switch (t) {
    case message_type::request_vote: return "request_vote";
    case message_type::request_vote_reply: return "request_vote_reply";
    case message_type::append_entries: return "append_entries";
    case message_type::append_entries_reply: return "append_entries_reply";
    case message_type::install_snapshot: return "install_snapshot";
    case message_type::install_snapshot_reply: return "install_snapshot_reply";
    case message_type::timeout_now: return "timeout_now";
    case message_type::forward_proposal: return "forward_proposal";
    case message_type::forward_reply: return "forward_reply";
    case message_type::read_index: return "read_index";
    case message_type::read_index_reply: return "read_index_reply";
  }
  return "unknown";
}

}  // namespace raftkit
