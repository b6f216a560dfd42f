// The linearizability checker as users run it (check_method::automatic: values first,
// search for what they leave open) against the search alone (check_method::search, the
// checker before values were used), on the same histories in one interleaved run: each
// history is checked by both, alternating which goes first, and the seconds of each are
// summed. Counters: search_s and values_s (CPU seconds of this thread per iteration: the
// machines are shared, and wall time would count other processes), speedup (search_s /
// values_s), searched_keys (keys the values left to the search), and search_inconclusive
// (histories the search alone could not decide in its budget; their time is counted up
// to the budget). Verdicts must agree wherever the search decides.
//
// Histories: the example files of tests/histories, the small histories the tests compare
// with brute force, the tests' 6000-operation random history (and with one read
// corrupted), seed 1007759's history from issue 17, and 100 generated histories of
// 20,000 operations (16 clients, 4 keys, values distinct as the simulator's are; and the
// same with puts reusing four values, which leaves every key to the search).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "raftkit/sim/history.hpp"
#include "raftkit/sim/linearizability.hpp"
#include "test_histories.hpp"

namespace {

namespace sim = raftkit::sim;
using history = std::vector<sim::operation>;

std::vector<history> example_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(test_histories::histories_dir())) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".jsonl" && !name.starts_with("malformed_") &&
        name.find("seed1007759") == std::string::npos)
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<history> r;
  for (const auto& f : files) {
    std::ifstream in(f);
    r.push_back(sim::parse_jsonl(in).ops);
  }
  return r;
}

std::vector<history> seed1007759() {
  std::ifstream in(test_histories::histories_dir() / "good_sim_seed1007759.jsonl");
  return {sim::parse_jsonl(in).ops};
}

// The tests' brute-force comparisons: 4000 of each kind, from the same seeds.
std::vector<history> small_histories() {
  std::vector<history> r;
  test_histories::rng a{7}, b{11};
  for (int i = 0; i < 4000; ++i) r.push_back(test_histories::random_small_history(a));
  for (int i = 0; i < 4000; ++i) r.push_back(test_histories::random_small_distinct_history(b));
  return r;
}

std::vector<history> large_random() {
  auto ops = test_histories::random_linearizable_history(42, 6000, 30, 2);
  auto bad = ops;
  std::size_t victim = bad.size() / 2;
  while (!(bad[victim].op == sim::op_kind::get && bad[victim].completed())) ++victim;
  bad[victim].output += "#";
  return {ops, bad};
}

std::vector<history> generated(bool distinct_puts) {
  std::vector<history> r;
  for (std::uint64_t seed = 1; seed <= 100; ++seed)
    r.push_back(test_histories::random_linearizable_history(seed, 20'000, 16, 4, distinct_puts));
  return r;
}

// This thread's CPU seconds: on a shared machine wall time also counts other processes.
double cpu_now() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

double seconds_of(const history& h, const sim::check_options& o, sim::check_result& out) {
  const double t0 = cpu_now();
  out = sim::check_linearizability(h, o);
  benchmark::DoNotOptimize(out.verdict);
  return cpu_now() - t0;
}

void compare(benchmark::State& st, const std::vector<history>& hs) {
  const sim::check_options by_values{};
  const sim::check_options by_search{.method = sim::check_method::search};
  double search_s = 0, values_s = 0;
  std::uint64_t searched = 0, inconclusive = 0;
  std::size_t round = 0;
  for (auto _ : st) {
    for (const auto& h : hs) {
      sim::check_result a, b;
      // Alternate which checker goes first, so neither always runs on a warm cache.
      if (++round % 2 == 0) {
        values_s += seconds_of(h, by_values, a);
        search_s += seconds_of(h, by_search, b);
      } else {
        search_s += seconds_of(h, by_search, b);
        values_s += seconds_of(h, by_values, a);
      }
      searched += a.searched_keys;
      if (b.verdict == sim::check_verdict::inconclusive) {
        ++inconclusive;
      } else if (a.verdict != b.verdict) {
        st.SkipWithError("the checkers disagree on a history");
        return;
      }
    }
  }
  const auto n = static_cast<double>(st.iterations());
  st.counters["search_s"] = search_s / n;
  st.counters["values_s"] = values_s / n;
  st.counters["speedup"] = values_s > 0 ? search_s / values_s : 0.0;
  st.counters["searched_keys"] = static_cast<double>(searched) / n;
  st.counters["search_inconclusive"] = static_cast<double>(inconclusive) / n;
  st.counters["histories"] = static_cast<double>(hs.size());
}

void examples(benchmark::State& st) {
  static const auto hs = example_files();
  compare(st, hs);
}
void small(benchmark::State& st) {
  static const auto hs = small_histories();
  compare(st, hs);
}
void large(benchmark::State& st) {
  static const auto hs = large_random();
  compare(st, hs);
}
void issue17(benchmark::State& st) {
  static const auto hs = seed1007759();
  compare(st, hs);
}
void generated_distinct(benchmark::State& st) {
  static const auto hs = generated(true);
  compare(st, hs);
}
void generated_shared_puts(benchmark::State& st) {
  static const auto hs = generated(false);
  compare(st, hs);
}

}  // namespace

BENCHMARK(examples)->Name("linearizability/example_files")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(small)->Name("linearizability/small_8000")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(large)->Name("linearizability/random_6000")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(issue17)->Name("linearizability/seed1007759")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(generated_distinct)->Name("linearizability/generated_100x20000")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->Iterations(1);
BENCHMARK(generated_shared_puts)->Name("linearizability/generated_100x20000_shared_puts")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
