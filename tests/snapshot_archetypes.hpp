#pragma once
// Minimal archetypes of the snapshot concepts: each has exactly what its concept requires
// and nothing more, so code instantiated with them (the engine) asks for nothing beyond the
// concepts. A type missing one member does not satisfy its concept.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "raftkit/snapshot_store.hpp"

namespace archetype {

struct snapshot_sink {
  std::error_code write(std::span<const std::byte>) { return {}; }
  std::uint64_t written() const { return 0; }
  std::uint32_t crc() const { return 0; }
  std::error_code commit() { return {}; }
  void abort() {}
};

struct snapshot_source {
  raftkit::snapshot_meta m;
  const raftkit::snapshot_meta& meta() const { return m; }
  std::size_t read_at(std::uint64_t, std::span<std::byte>) { return 0; }
  std::error_code error() const { return {}; }
};

struct snapshot_store {
  std::optional<raftkit::snapshot_meta> latest() const { return std::nullopt; }
  snapshot_sink create(raftkit::index_t, raftkit::term_t, std::vector<std::byte>) { return {}; }
  snapshot_source open(const raftkit::snapshot_meta& m) { return {m}; }
};

static_assert(raftkit::snapshot_sink<snapshot_sink>);
static_assert(raftkit::snapshot_source<snapshot_source>);
static_assert(raftkit::snapshot_store<snapshot_store>);

struct sink_without_commit {
  std::error_code write(std::span<const std::byte>) { return {}; }
  std::uint64_t written() const { return 0; }
  std::uint32_t crc() const { return 0; }
  void abort() {}
};
struct source_without_error {
  raftkit::snapshot_meta m;
  const raftkit::snapshot_meta& meta() const { return m; }
  std::size_t read_at(std::uint64_t, std::span<std::byte>) { return 0; }
};
/// create() returns something that is not a sink.
struct store_with_bad_sink {
  std::optional<raftkit::snapshot_meta> latest() const { return std::nullopt; }
  sink_without_commit create(raftkit::index_t, raftkit::term_t, std::vector<std::byte>) { return {}; }
  snapshot_source open(const raftkit::snapshot_meta& m) { return {m}; }
};
static_assert(!raftkit::snapshot_sink<sink_without_commit>);
static_assert(!raftkit::snapshot_source<source_without_error>);
static_assert(!raftkit::snapshot_store<store_with_bad_sink>);

}  // namespace archetype
