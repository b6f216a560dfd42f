#pragma once
// The engine tests' harness: a recording state machine, a simulated cluster of it, and
// helpers to propose, forge logs and compare them. Shared by test_engine.cpp and
// test_engine_hardening.cpp.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raftkit/raftkit.hpp"
#include "raftkit/sim/cluster.hpp"

namespace engine_test {

using namespace std::chrono_literals;
using raftkit::entry;
using raftkit::errc;
using raftkit::index_t;
using raftkit::message;
using raftkit::message_type;
using raftkit::node_id;
using raftkit::term_t;

/// Records what it applies; `apply` returns the index so a proposer can check it.
/// A transport that records what a node sends.
struct recording_transport {
  std::shared_ptr<std::vector<message>> out = std::make_shared<std::vector<message>>();
  void send(message&& m) { out->push_back(std::move(m)); }
};

struct recorder {
  std::vector<std::pair<index_t, std::string>> applied;
  index_t apply(index_t i, std::span<const std::byte> cmd) {
    applied.emplace_back(i, std::string(reinterpret_cast<const char*>(cmd.data()), cmd.size()));
    return i;
  }
};

using cluster = raftkit::sim::cluster<recorder>;

struct outcome {
  bool done = false;
  std::error_code ec;
  index_t index = 0;
};

inline raftkit::sim::cluster_options options(std::size_t n, std::uint64_t seed = 1) {
  raftkit::sim::cluster_options o;
  o.nodes = n;
  o.seed = seed;
  return o;
}

/// Raft as the paper states it, without the thesis's extensions (pre-vote, check-quorum,
/// leader stickiness), for the tests of the paper's own rules that they would mask (a
/// sticky leader ignores the higher-term RequestVote such a test sends, say). The
/// extensions have tests of their own, and the simulator runs with them on.
inline raftkit::sim::cluster_options classic_options(std::size_t n, std::uint64_t seed = 1) {
  raftkit::sim::cluster_options o = options(n, seed);
  o.node.pre_vote = false;
  o.node.check_quorum = false;
  o.node.leader_stickiness = false;
  return o;
}

inline void propose(cluster& c, node_id on, const std::string& cmd, outcome* out = nullptr) {
  c.node(on).propose(std::as_bytes(std::span(cmd.data(), cmd.size())),
                     [out](std::error_code ec, index_t at, index_t applied_at) {
                       if (!out) return;
                       REQUIRE_FALSE(out->done);  // every proposal completes exactly once
                       if (!ec) REQUIRE(at == applied_at);  // the completion's index is where it applied
                       *out = outcome{true, ec, at};
                     });
}

/// Replaces `id`'s durable log by entries of the given terms (index i has terms[i-1])
/// and its persisted term, as if it had lived through an earlier history.
inline void set_log(cluster& c, node_id id, const std::vector<term_t>& terms, term_t current_term) {
  c.crash(id);
  auto& s = c.store(id);
  s.truncate_after(0);
  for (std::size_t i = 0; i < terms.size(); ++i) {
    const std::string payload = "t" + std::to_string(terms[i]) + "i" + std::to_string(i + 1);
    entry e{terms[i], i + 1, raftkit::entry_type::normal, raftkit::shared_bytes::copy_of(payload)};
    s.append(std::span<const entry>(&e, 1));
  }
  s.sync();
  s.save_hard_state({current_term, raftkit::no_node});
  c.restart(id);
}

inline std::vector<term_t> log_terms(cluster& c, node_id id) {
  std::vector<term_t> t;
  auto& s = c.store(id);
  for (index_t i = s.first_index(); i <= s.last_index(); ++i) t.push_back(s.term_at(i));
  return t;
}

inline std::vector<std::string> log_payloads(cluster& c, node_id id) {
  std::vector<std::string> t;
  auto& s = c.store(id);
  for (index_t i = s.first_index(); i <= s.last_index(); ++i) t.emplace_back(s.at(i).payload.view());
  return t;
}

/// Tracks who was leader in each term, across every step.
struct leader_log {
  std::map<term_t, std::set<node_id>> by_term;
  void observe(cluster& c) {
    for (node_id id : c.ids())
      if (c.is_up(id) && c.node(id).is_leader()) by_term[c.node(id).term()].insert(id);
  }
  bool at_most_one_per_term() const {
    for (const auto& [t, ls] : by_term)
      if (ls.size() > 1) return false;
    return true;
  }
};

inline bool logs_equal(cluster& c, const std::vector<node_id>& ids) {
  for (node_id id : ids)
    if (log_payloads(c, id) != log_payloads(c, ids.front()) || log_terms(c, id) != log_terms(c, ids.front()))
      return false;
  return true;
}


}  // namespace engine_test
