#pragma once
// Register histories for the linearizability checker's tests and benchmarks: generated
// ones (the same seed gives the same history on every platform) and the directory of
// example history files.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "raftkit/sim/history.hpp"

namespace test_histories {

using raftkit::sim::op_kind;
using raftkit::sim::operation;

// splitmix64: a fixed generator so the random history is the same on every platform.
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

// A history produced by a real sequential register: each client invokes, the op takes
// effect at a random later instant (its linearization point) and returns later still,
// with many clients in flight at once. Some ops never return: either they crashed
// before taking effect or after. Appends write unique tokens; puts reuse a few values,
// or with `distinct_puts` write unique ones too (as the simulator's clients do), so
// that the values alone fix the order of the writes. Every such history is
// linearizable.
inline std::vector<operation> random_linearizable_history(std::uint64_t seed, std::size_t n_ops,
                                                          std::size_t clients, std::size_t keys,
                                                          bool distinct_puts = false) {
  rng r{seed};
  enum class phase { idle, invoked, applied };
  struct slot {
    phase ph = phase::idle;
    std::size_t op = 0;
    std::uint64_t client = 0;
  };
  std::vector<slot> slots(clients);
  for (std::size_t c = 0; c < clients; ++c) slots[c].client = c;
  std::uint64_t next_client = clients;
  std::vector<std::string> model(keys);
  std::vector<operation> ops;
  std::int64_t t = 0;
  std::size_t busy = 0;
  while (ops.size() < n_ops || busy > 0) {
    auto& s = slots[r.below(clients)];
    t += 1 + static_cast<std::int64_t>(r.below(5));
    switch (s.ph) {
      case phase::idle: {
        if (ops.size() >= n_ops) break;
        operation o;
        o.client = s.client;
        std::size_t k = r.below(keys);
        o.key = "k" + std::to_string(k);
        auto dice = r.below(10);
        o.op = dice < 4 ? op_kind::get : dice < 6 ? op_kind::put : op_kind::append;
        if (o.op == op_kind::put)
          o.value = distinct_puts ? "p" + std::to_string(ops.size()) + ";"
                                  : "p" + std::to_string(r.below(4));
        if (o.op == op_kind::append) o.value = "a" + std::to_string(ops.size()) + ";";
        o.call = t;
        s.op = ops.size();
        ops.push_back(std::move(o));
        s.ph = phase::invoked;
        ++busy;
        break;
      }
      case phase::invoked: {
        if (r.below(100) < 2) {  // crashed before taking effect
          s.ph = phase::idle;
          s.client = next_client++;
          --busy;
          break;
        }
        auto& o = ops[s.op];
        std::size_t k = static_cast<std::size_t>(std::stoul(o.key.substr(1)));
        if (o.op == op_kind::put) model[k] = o.value;
        if (o.op == op_kind::append) model[k] += o.value;
        if (o.op == op_kind::get) o.output = model[k];
        s.ph = phase::applied;
        break;
      }
      case phase::applied: {
        auto& o = ops[s.op];
        if (r.below(100) < 2) {  // took effect, but the client never heard back
          o.output.clear();
          s.client = next_client++;
        } else {
          o.ret = t;
        }
        s.ph = phase::idle;
        --busy;
        break;
      }
    }
  }
  return ops;
}

// For the small histories: the ops execute one after another in index order, the next
// at `t` or a little later, each with an interval stretched around its instant, so that
// intervals overlap heavily and share timestamps.
inline void stretch_around(rng& r, std::int64_t& t, operation& o) {
  t += static_cast<std::int64_t>(r.below(3));
  o.call = t - static_cast<std::int64_t>(r.below(6));
  if (o.call < 0) o.call = 0;
  o.ret = t + static_cast<std::int64_t>(r.below(6));
}

// One op in five never returns (having taken effect: it stays in the execution).
inline void maybe_unknown(rng& r, operation& o) {
  if (r.below(5) == 0) {
    o.ret = raftkit::sim::unknown_return;
    o.output.clear();
  }
}

// Small single-key histories with heavy overlap, equal timestamps, repeated values and
// values that are prefixes of one another, so every shortcut of the search is exercised.
inline std::vector<operation> random_small_history(rng& r) {
  const char* values[] = {"1", "2", "12", ""};
  const char* outputs[] = {"", "1", "2", "12", "21", "11", "122", "112", "212"};
  std::vector<operation> ops;
  const std::size_t n = 2 + r.below(6);
  std::string model;
  const bool from_execution = r.below(2) == 0;
  std::int64_t t = 0;
  for (std::size_t i = 0; i < n; ++i) {
    operation o;
    o.client = i;
    o.key = "k";
    auto dice = r.below(3);
    o.op = dice == 0 ? op_kind::get : dice == 1 ? op_kind::put : op_kind::append;
    if (o.op != op_kind::get) o.value = values[r.below(4)];
    stretch_around(r, t, o);
    if (o.op == op_kind::put) model = o.value;
    if (o.op == op_kind::append) model += o.value;
    if (o.op == op_kind::get) o.output = from_execution ? model : outputs[r.below(9)];
    maybe_unknown(r, o);
    ops.push_back(std::move(o));
  }
  return ops;
}

// Small single-key histories in which every write has its own value, as the
// simulator's do, so that the values decide most of them. Reads see what a sequential
// execution gives, or that with one value dropped, swapped, added or replaced, or
// anything spelled from the written values. In a quarter of them the values are
// concatenations of one another ("1", "2", "12"), so some outputs split two ways.
inline std::vector<operation> random_small_distinct_history(rng& r) {
  static const char* const plain[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  static const char* const tangled[] = {"1", "2", "12", "21", "3", "23", "123", "31", "32"};
  const char* const* pool = r.below(4) == 0 ? tangled : plain;
  std::vector<operation> ops;
  const std::size_t n = 2 + r.below(7);
  std::string model;
  std::size_t next_value = r.below(9);
  std::int64_t t = 0;
  for (std::size_t i = 0; i < n; ++i) {
    operation o;
    o.client = i;
    o.key = "k";
    auto dice = r.below(5);
    o.op = dice < 2 ? op_kind::get : dice == 2 ? op_kind::put : op_kind::append;
    if (o.op != op_kind::get) o.value = pool[next_value++ % 9];
    stretch_around(r, t, o);
    if (o.op == op_kind::put) model = o.value;
    if (o.op == op_kind::append) model += o.value;
    if (o.op == op_kind::get) o.output = model;
    maybe_unknown(r, o);
    ops.push_back(std::move(o));
  }
  std::vector<std::size_t> reads;
  std::vector<std::string> puts{""}, appends;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].op == op_kind::get && ops[i].completed()) reads.push_back(i);
    if (ops[i].op == op_kind::put) puts.push_back(ops[i].value);
    if (ops[i].op == op_kind::append) appends.push_back(ops[i].value);
  }
  const auto mode = r.below(3);
  if (mode == 0 || reads.empty()) return ops;
  std::string& out = ops[reads[r.below(reads.size())]].output;
  auto any_append = [&] { return appends.empty() ? std::string("x") : appends[r.below(appends.size())]; };
  if (mode == 1) {  // one change to one read
    switch (r.below(4)) {
      case 0: if (!out.empty()) out.erase(out.size() - 1); break;
      case 1: if (out.size() >= 2) std::swap(out[out.size() - 1], out[out.size() - 2]); break;
      case 2: out += any_append(); break;
      default: out = puts[r.below(puts.size())] + out.substr(out.empty() ? 0 : 1); break;
    }
  } else {  // a read spelled from the written values
    out = puts[r.below(puts.size())];
    for (auto k = r.below(4); k > 0; --k) out += any_append();
  }
  return ops;
}

// tests/histories: RAFTKIT_HISTORIES_DIR, or found from this file's path.
inline std::filesystem::path histories_dir() {
  if (const char* env = std::getenv("RAFTKIT_HISTORIES_DIR")) return env;
  // __FILE__ may be relative to the build directory (meson passes ../tests/...), so
  // also try it from the build root, two levels above the executable.
  std::filesystem::path here = std::filesystem::path(__FILE__).parent_path() / "histories";
  if (std::filesystem::is_directory(here)) return here;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto from_build = exe.parent_path().parent_path() / here;
    if (std::filesystem::is_directory(from_build)) return from_build;
  }
  return here;
}

}  // namespace test_histories
