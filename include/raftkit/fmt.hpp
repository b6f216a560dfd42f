#pragma once
/// \file {fmt} formatters for raftkit's public types, in their own header so the core
/// needs no fmt: `fmt::format("{}", msg)` for a message, an entry, a node_status, a role,
/// an errc, a std::error_code and a node_config; plus raftkit/events.hpp's events.
///
/// Formats are one line, `key=value` separated by spaces, meant for logs:
///
///     append_entries 1->2 term=3 log_index=7 log_term=3 commit=6 entries=2
///     entry index=8 term=3 normal payload=12B
///     node 1 leader term=3 leader=1 commit=8 applied=8 log=1..8 durable=8 ...
///
/// A message shows its entry count, an entry its payload length, never payload bytes.
/// role, errc, entry_type and message_type accept string specs (`{:>10}`); the structs
/// accept only `{}`.

#include <fmt/format.h>

#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "raftkit/config.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/events.hpp"
#include "raftkit/message.hpp"
#include "raftkit/status.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// The identifier of an errc value as it is spelt in C++ (`not_leader`), for logs and
/// metrics labels; "unknown" for a value errc does not define.
constexpr std::string_view errc_name(errc e) noexcept {
  switch (e) {
    case errc::not_leader: return "not_leader";
    case errc::dropped: return "dropped";
    case errc::timeout: return "timeout";
    case errc::busy: return "busy";
    case errc::shutting_down: return "shutting_down";
    case errc::leadership_lost: return "leadership_lost";
    case errc::corrupt_log: return "corrupt_log";
    case errc::io_error: return "io_error";
    case errc::bad_message: return "bad_message";
    case errc::no_space: return "no_space";
    case errc::locked: return "locked";
    case errc::too_large: return "too_large";
    case errc::stopped: return "stopped";
    case errc::apply_failed: return "apply_failed";
    case errc::transferring: return "transferring";
    case errc::unknown_member: return "unknown_member";
    case errc::not_supported: return "not_supported";
    case errc::stale_snapshot: return "stale_snapshot";
    case errc::corrupt_snapshot: return "corrupt_snapshot";
    case errc::snapshot_failed: return "snapshot_failed";
    case errc::membership_change_in_progress: return "membership_change_in_progress";
    case errc::invalid_membership_change: return "invalid_membership_change";
    case errc::catch_up_failed: return "catch_up_failed";
  }
  return "unknown";
}

constexpr std::string_view entry_type_name(entry_type t) noexcept {
  switch (t) {
    case entry_type::normal: return "normal";
    case entry_type::noop: return "noop";
    case entry_type::config: return "config";
  }
  return "unknown";
}

namespace detail {

/// Refuses any format spec: the struct formatters print one fixed form.
constexpr auto parse_empty_spec(fmt::format_parse_context& ctx) {
  auto it = ctx.begin();
  if (it != ctx.end() && *it != '}') throw fmt::format_error("raftkit: this type takes no format spec");
  return it;
}

/// A duration in the largest unit that shows it exactly: 150ms, 2s, 1500us, 7ns.
template <class Out>
Out format_duration(Out out, duration d) {
  const auto n = d.count();
  if (n != 0 && n % 1'000'000'000 == 0) return fmt::format_to(out, "{}s", n / 1'000'000'000);
  if (n != 0 && n % 1'000'000 == 0) return fmt::format_to(out, "{}ms", n / 1'000'000);
  if (n != 0 && n % 1'000 == 0) return fmt::format_to(out, "{}us", n / 1'000);
  return fmt::format_to(out, "{}ns", n);
}

constexpr std::string_view on_off(bool b) noexcept { return b ? "on" : "off"; }

}  // namespace detail
}  // namespace raftkit

/// `follower`, `candidate`, `leader`, `pre_candidate`.
template <>
struct fmt::formatter<raftkit::role> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(raftkit::role r, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(raftkit::to_string(r), ctx);
  }
};

/// `append_entries`, `request_vote`, ...
template <>
struct fmt::formatter<raftkit::message_type> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(raftkit::message_type t, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(raftkit::to_string(t), ctx);
  }
};

/// `normal`, `noop`, `config`.
template <>
struct fmt::formatter<raftkit::entry_type> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(raftkit::entry_type t, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(raftkit::entry_type_name(t), ctx);
  }
};

/// The enumerator's name: `not_leader`.
template <>
struct fmt::formatter<raftkit::errc> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(raftkit::errc e, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(raftkit::errc_name(e), ctx);
  }
};

/// `ok` for no error; a raftkit code as `name (message)`: `busy (too many pending
/// proposals)`; any other as `category:value (message)`: `generic:28 (No space left on device)`.
template <>
struct fmt::formatter<std::error_code> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return raftkit::detail::parse_empty_spec(ctx); }
  template <class Ctx>
  auto format(const std::error_code& ec, Ctx& ctx) const {
    if (!ec) return fmt::format_to(ctx.out(), "ok");
    if (ec.category() == raftkit::raftkit_category())
      return fmt::format_to(ctx.out(), "{} ({})", raftkit::errc_name(static_cast<raftkit::errc>(ec.value())),
                            ec.message());
    return fmt::format_to(ctx.out(), "{}:{} ({})", ec.category().name(), ec.value(), ec.message());
  }
};

/// `entry index=8 term=3 normal payload=12B`.
template <>
struct fmt::formatter<raftkit::entry> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return raftkit::detail::parse_empty_spec(ctx); }
  template <class Ctx>
  auto format(const raftkit::entry& e, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "entry index={} term={} {} payload={}B", e.index, e.term, e.type,
                          e.payload.size());
  }
};

/// `<type> <from>-><to> term=<t>`, then the fields that type uses and that are set
/// (message.hpp's table): log_index, log_term, commit, reject, hints, received,
/// request_id, code, flags, snapshot offsets and sizes, and `entries=<count>`.
template <>
struct fmt::formatter<raftkit::message> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return raftkit::detail::parse_empty_spec(ctx); }
  template <class Ctx>
  auto format(const raftkit::message& m, Ctx& ctx) const {
    namespace flags = raftkit::message_flags;
    using raftkit::message_type;
    auto out = fmt::format_to(ctx.out(), "{} {}->{} term={}", m.type, m.from, m.to, m.term);
    const bool snapshot = m.type == message_type::install_snapshot || m.type == message_type::install_snapshot_reply;
    if (m.log_index || m.type == message_type::append_entries || snapshot) out = fmt::format_to(out, " log_index={}", m.log_index);
    if (m.log_term || m.type == message_type::append_entries || m.type == message_type::request_vote)
      out = fmt::format_to(out, " log_term={}", m.log_term);
    if (m.commit || m.type == message_type::append_entries) out = fmt::format_to(out, " commit={}", m.commit);
    if (m.reject) out = fmt::format_to(out, " reject");
    if (m.hint_index || m.hint_term) out = fmt::format_to(out, " hint_index={} hint_term={}", m.hint_index, m.hint_term);
    if (m.received_index) out = fmt::format_to(out, " received={}", m.received_index);
    if (m.request_id) out = fmt::format_to(out, " request_id={}", m.request_id);
    if (m.code) out = fmt::format_to(out, " code={}", static_cast<raftkit::errc>(m.code));
    if (m.flags & flags::pre_vote) out = fmt::format_to(out, " pre_vote");
    if (m.flags & flags::transfer) out = fmt::format_to(out, " transfer");
    if (m.flags & flags::lease) out = fmt::format_to(out, " lease");
    if (m.flags & flags::last_chunk) out = fmt::format_to(out, " last_chunk");
    if (snapshot) out = fmt::format_to(out, " offset={} size={}", m.snapshot_offset, m.snapshot_size);
    if (!m.data.empty()) out = fmt::format_to(out, " data={}B", m.data.size());
    if (!m.entries.empty() || m.type == message_type::append_entries || m.type == message_type::forward_proposal)
      out = fmt::format_to(out, " entries={}", m.entries.size());
    return out;
  }
};

/// `node 1 leader term=3 leader=1 commit=8 applied=8 log=1..8 durable=8 pending=0 reads=0`,
/// then `uncommitted=<n>B` on a leader with bytes in flight, `snapshot=<index>@<term>` when
/// there is one, `transfer_to=<id>`, `lease` while it holds, and per peer on a leader
/// `peers=[2 match=8 next=9 inflight=0, 3 match=7 next=9 inflight=1 probing]`.
template <>
struct fmt::formatter<raftkit::node_status> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return raftkit::detail::parse_empty_spec(ctx); }
  template <class Ctx>
  auto format(const raftkit::node_status& s, Ctx& ctx) const {
    auto out = fmt::format_to(ctx.out(), "node {} {} term={} leader={} commit={} applied={} log={}..{} durable={} pending={} reads={}",
                              s.id, s.role, s.term, s.leader, s.commit_index, s.applied_index, s.first_log_index,
                              s.last_log_index, s.durable_index, s.pending_proposals, s.pending_reads);
    if (s.uncommitted_bytes) out = fmt::format_to(out, " uncommitted={}B", s.uncommitted_bytes);
    if (s.snapshot_index) out = fmt::format_to(out, " snapshot={}@{} ({}B)", s.snapshot_index, s.snapshot_term, s.snapshot_size);
    if (s.transfer_target != raftkit::no_node) out = fmt::format_to(out, " transfer_to={}", s.transfer_target);
    if (s.lease_valid) out = fmt::format_to(out, " lease");
    if (s.peers.empty()) return out;
    out = fmt::format_to(out, " peers=[");
    for (std::size_t i = 0; i < s.peers.size(); ++i) {
      const auto& p = s.peers[i];
      out = fmt::format_to(out, "{}{} match={} next={} inflight={}{}", i ? ", " : "", p.id, p.match_index, p.next_index,
                           p.in_flight, p.probing ? " probing" : "");
    }
    return fmt::format_to(out, "]");
  }
};

/// Every setting: `id=1 members=[1,2,3] election_timeout=150ms heartbeat_interval=30ms ...`.
template <>
struct fmt::formatter<raftkit::node_config> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return raftkit::detail::parse_empty_spec(ctx); }
  template <class Ctx>
  auto format(const raftkit::node_config& c, Ctx& ctx) const {
    using raftkit::detail::format_duration;
    using raftkit::detail::on_off;
    auto out = fmt::format_to(ctx.out(), "id={} members=[", c.id);
    for (std::size_t i = 0; i < c.members.size(); ++i) out = fmt::format_to(out, "{}{}", i ? "," : "", c.members[i]);
    out = fmt::format_to(out, "] election_timeout=");
    out = format_duration(out, c.election_timeout);
    out = fmt::format_to(out, " heartbeat_interval=");
    out = format_duration(out, c.heartbeat_interval);
    out = fmt::format_to(out, " max_entries_per_message={} max_bytes_per_message={} max_inflight_messages={} max_inflight_bytes={}",
                         c.max_entries_per_message, c.max_bytes_per_message, c.max_inflight_messages, c.max_inflight_bytes);
    out = fmt::format_to(out, " max_pending_proposals={} max_uncommitted_bytes={} forward_proposals={} forward_timeout=",
                         c.max_pending_proposals, c.max_uncommitted_bytes, on_off(c.forward_proposals));
    out = format_duration(out, c.forward_timeout);
    out = fmt::format_to(out, " max_apply_batch={} pre_vote={} check_quorum={} leader_stickiness={} lease_reads={} clock_drift_bound={}",
                         c.max_apply_batch, on_off(c.pre_vote), on_off(c.check_quorum), on_off(c.leader_stickiness),
                         on_off(c.lease_reads), c.clock_drift_bound);
    return fmt::format_to(out, " max_pending_reads={} snapshot_interval={} snapshot_trailing_entries={} max_snapshot_chunk_bytes={} seed={}",
                          c.max_pending_reads, c.snapshot_interval, c.snapshot_trailing_entries, c.max_snapshot_chunk_bytes, c.seed);
  }
};

/// `term_changed from=1 to=2 why=higher_term`: the event's name, then each field
/// (raftkit::visit_fields) as `key=value`; durations in their largest exact unit. The node
/// and term are left to the caller (`node={} term={} {}`, e.node, e.term, e).
template <>
struct fmt::formatter<raftkit::event> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return raftkit::detail::parse_empty_spec(ctx); }
  template <class Ctx>
  auto format(const raftkit::event& e, Ctx& ctx) const {
    auto out = fmt::format_to(ctx.out(), "{}", e.name());
    raftkit::visit_fields(e.data, [&](std::string_view key, const auto& value) {
      out = fmt::format_to(out, " {}=", key);
      if constexpr (std::is_same_v<std::decay_t<decltype(value)>, raftkit::duration>)
        out = raftkit::detail::format_duration(out, value);
      else
        out = fmt::format_to(out, "{}", value);
    });
    return out;
  }
};
