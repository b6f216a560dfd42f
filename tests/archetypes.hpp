#pragma once
// Minimal archetypes of the four policy concepts: each has exactly what its concept
// requires and nothing more, so instantiating the engine with them proves the engine
// asks for nothing beyond the concepts.

#include <span>
#include <vector>

#include "raftkit/clock.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/node.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/transport.hpp"

namespace archetype {

struct transport {
  std::vector<raftkit::message>* out = nullptr;
  void send(raftkit::message&& m) { out->push_back(std::move(m)); }
};

struct log_store {
  std::vector<raftkit::entry> entries;
  raftkit::hard_state hs;
  raftkit::index_t first_index() const { return 1; }
  raftkit::index_t last_index() const { return entries.size(); }
  raftkit::term_t term_at(raftkit::index_t i) const {
    return i >= 1 && i <= entries.size() ? entries[i - 1].term : 0;
  }
  raftkit::entry at(raftkit::index_t i) const { return entries[i - 1]; }
  raftkit::index_t durable_index() const { return entries.size(); }
  void append(std::span<const raftkit::entry> es) { entries.insert(entries.end(), es.begin(), es.end()); }
  void truncate_after(raftkit::index_t i) { entries.resize(i); }
  raftkit::hard_state load_hard_state() const { return hs; }
  void save_hard_state(const raftkit::hard_state& h) { hs = h; }
};

/// The smallest state machine: `apply` returning nothing.
struct state_machine {
  void apply(raftkit::index_t, std::span<const std::byte>) {}
};

struct clock {
  raftkit::time_point t{};
  raftkit::time_point now() const { return t; }
};

static_assert(raftkit::transport<transport>);
static_assert(raftkit::log_store<log_store>);
static_assert(raftkit::state_machine<state_machine>);
static_assert(raftkit::clock<clock>);

using node = raftkit::basic_node<transport, log_store, state_machine, clock>;

// A policy missing one member does not satisfy its concept.
struct store_without_durable_index {
  raftkit::index_t first_index() const { return 1; }
  raftkit::index_t last_index() const { return 0; }
  raftkit::term_t term_at(raftkit::index_t) const { return 0; }
  raftkit::entry at(raftkit::index_t) const { return {}; }
  void append(std::span<const raftkit::entry>) {}
  void truncate_after(raftkit::index_t) {}
  raftkit::hard_state load_hard_state() const { return {}; }
  void save_hard_state(const raftkit::hard_state&) {}
};
struct transport_without_send {};
struct clock_without_now {};
struct state_machine_without_apply {
  int value = 0;
};
static_assert(!raftkit::log_store<store_without_durable_index>);
static_assert(!raftkit::transport<transport_without_send>);
static_assert(!raftkit::clock<clock_without_now>);
static_assert(!raftkit::state_machine<state_machine_without_apply>);

}  // namespace archetype
