#pragma once
// A bank ledger on raftkit, tested the way a user tests their own service: the state
// machine, its sequential model (the specification: money is conserved and no balance
// goes below zero), and the scenario sim::run and sim::main drive.
//
// Every bank holds `accounts_per_bank` accounts that open with `opening_balance` each.
// A transfer moves an amount between two accounts of one bank, or is refused when the
// source account has too little; a balance read shows one account, an audit every
// account of a bank. Banks are independent, so the model checks each bank alone, and the
// clients move on to a fresh bank after a while (sim::partition_rotation), which keeps
// every bank's history short.
//
// With LEDGER_BROKEN_RESTART defined, the ledger keeps its balances in a store that
// outlives the process (as if it wrote them straight to a local database) without
// recording which log index they include: after a crash Raft replays the log onto
// balances that already hold it, and that replica's books double-count. Replicas then
// differ (the digest check finds it at once), and so do the answers the replica gives
// (the model finds it where a client reads from it).

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raftkit/sim/model.hpp"
#include "raftkit/sim/scenario.hpp"
#include "raftkit/types.hpp"

namespace ledger {

inline constexpr std::size_t accounts_per_bank = 3;
inline constexpr std::int64_t opening_balance = 100;

/// What a client asks.
struct request {
  enum class kind : std::uint8_t { transfer, balance, audit };
  kind what = kind::audit;
  std::uint32_t bank = 0;
  std::uint8_t from = 0;     ///< transfer: the source; balance: the account read
  std::uint8_t to = 0;       ///< transfer: the destination
  std::int64_t amount = 0;   ///< transfer: how much (positive)
  friend bool operator==(const request&, const request&) = default;
};

/// What a client is told.
struct answer {
  enum class status : std::uint8_t { ok, insufficient, malformed };
  status result = status::ok;
  std::vector<std::int64_t> balances;  ///< balance: one; audit: every account of the bank
  friend bool operator==(const answer&, const answer&) = default;
};

/// The command bytes: [kind:1][bank:4][from:1][to:1][amount:8], little-endian.
inline raftkit::shared_bytes encode(const request& r) {
  raftkit::shared_bytes b = raftkit::shared_bytes::allocate(15);
  std::byte* p = b.mutable_data();
  p[0] = static_cast<std::byte>(r.what);
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<std::byte>((r.bank >> (8 * i)) & 0xff);
  p[5] = static_cast<std::byte>(r.from);
  p[6] = static_cast<std::byte>(r.to);
  const auto a = static_cast<std::uint64_t>(r.amount);
  for (int i = 0; i < 8; ++i) p[7 + i] = static_cast<std::byte>((a >> (8 * i)) & 0xff);
  return b;
}

/// The request in `b`, or nullopt if the bytes are not one.
inline std::optional<request> decode(std::span<const std::byte> b) {
  if (b.size() != 15 || static_cast<std::uint8_t>(b[0]) > 2) return std::nullopt;
  request r;
  r.what = static_cast<request::kind>(b[0]);
  for (int i = 0; i < 4; ++i) r.bank |= static_cast<std::uint32_t>(b[1 + i]) << (8 * i);
  r.from = static_cast<std::uint8_t>(b[5]);
  r.to = static_cast<std::uint8_t>(b[6]);
  std::uint64_t a = 0;
  for (int i = 0; i < 8; ++i) a |= static_cast<std::uint64_t>(b[7 + i]) << (8 * i);
  r.amount = static_cast<std::int64_t>(a);
  if (r.from >= accounts_per_bank || r.to >= accounts_per_bank) return std::nullopt;
  if (r.what == request::kind::transfer && (r.from == r.to || r.amount <= 0)) return std::nullopt;
  return r;
}

using bank_balances = std::array<std::int64_t, accounts_per_bank>;

/// Where a ledger keeps its balances: banks never touched are not stored (they hold the
/// opening balances).
struct book {
  std::map<std::uint32_t, bank_balances> banks;
  std::uint64_t digest = 0;  ///< see ledger::digest
};

/// The replicated ledger: a raftkit state machine with query() for reads without the
/// log and digest() for the simulator's replica comparison.
class state_machine {
 public:
  /// A ledger over `storage` (a fresh book: a ledger that starts empty).
  explicit state_machine(std::shared_ptr<book> storage) : book_(std::move(storage)) {}

  answer apply(raftkit::index_t, std::span<const std::byte> command) {
    auto r = decode(command);
    if (!r) return {answer::status::malformed, {}};
    if (r->what != request::kind::transfer) return read(*r);
    bank_balances& b = bank(r->bank);
    if (b[r->from] < r->amount) return {answer::status::insufficient, {}};
    set(r->bank, b, r->from, b[r->from] - r->amount);
    set(r->bank, b, r->to, b[r->to] + r->amount);
    return {answer::status::ok, {}};
  }

  /// A balance or an audit, from the current state; a transfer is not a read.
  answer query(std::span<const std::byte> command) const {
    auto r = decode(command);
    if (!r || r->what == request::kind::transfer) return {answer::status::malformed, {}};
    return read(*r);
  }

  /// A fingerprint of every balance, kept up to date by each transfer: the sum over
  /// accounts of hash(bank, account, balance) - hash(bank, account, opening balance), so
  /// an account still at its opening balance adds nothing, stored or not.
  std::uint64_t digest() const noexcept { return book_->digest; }

 private:
  static std::uint64_t account_hash(std::uint32_t bank, std::size_t account, std::int64_t balance) noexcept {
    std::uint64_t x = (std::uint64_t{bank} << 8 | account) * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint64_t>(balance);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  bank_balances& bank(std::uint32_t id) {
    auto [it, fresh] = book_->banks.try_emplace(id);
    if (fresh) it->second.fill(opening_balance);
    return it->second;
  }
  void set(std::uint32_t id, bank_balances& b, std::size_t account, std::int64_t balance) {
    book_->digest += account_hash(id, account, balance) - account_hash(id, account, b[account]);
    b[account] = balance;
  }
  answer read(const request& r) const {
    bank_balances b;
    b.fill(opening_balance);
    if (auto it = book_->banks.find(r.bank); it != book_->banks.end()) b = it->second;
    if (r.what == request::kind::balance) return {answer::status::ok, {b[r.from]}};
    return {answer::status::ok, std::vector<std::int64_t>(b.begin(), b.end())};
  }

  std::shared_ptr<book> book_;
};

// ------------------------------------------------------------------ text forms

inline std::string to_text(const request& r) {
  const std::string bank = "bank " + std::to_string(r.bank);
  switch (r.what) {
    case request::kind::transfer:
      return "transfer " + std::to_string(r.amount) + " from " + std::to_string(r.from) + " to " +
             std::to_string(r.to) + " in " + bank;
    case request::kind::balance: return "balance of " + std::to_string(r.from) + " in " + bank;
    case request::kind::audit: return "audit " + bank;
  }
  return "?";
}

inline std::string to_text(const answer& a) {
  switch (a.result) {
    case answer::status::insufficient: return "insufficient funds";
    case answer::status::malformed: return "malformed";
    case answer::status::ok: break;
  }
  if (a.balances.empty()) return "ok";
  std::string r;
  for (auto v : a.balances) r += (r.empty() ? "" : ",") + std::to_string(v);
  return r;
}

namespace detail {
inline std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> w;
  while (!s.empty()) {
    const auto sp = s.find(' ');
    if (sp != 0) w.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return w;
}
inline std::optional<std::int64_t> number(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  bool neg = s[0] == '-';
  for (std::size_t i = neg ? 1 : 0; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}
}  // namespace detail

inline std::optional<request> request_from_text(std::string_view t) {
  const auto w = detail::words(t);
  request r;
  auto account = [](std::string_view s) -> std::optional<std::uint8_t> {
    auto n = detail::number(s);
    if (!n || *n < 0 || *n >= static_cast<std::int64_t>(accounts_per_bank)) return std::nullopt;
    return static_cast<std::uint8_t>(*n);
  };
  auto bank = [](std::string_view s) -> std::optional<std::uint32_t> {
    auto n = detail::number(s);
    if (!n || *n < 0 || *n > 0xFFFFFFFFll) return std::nullopt;
    return static_cast<std::uint32_t>(*n);
  };
  if (w.size() == 9 && w[0] == "transfer" && w[2] == "from" && w[4] == "to" && w[6] == "in" && w[7] == "bank") {
    auto amount = detail::number(w[1]);
    auto f = account(w[3]), to = account(w[5]);
    auto b = bank(w[8]);
    if (!amount || *amount <= 0 || !f || !to || *f == *to || !b) return std::nullopt;
    return request{request::kind::transfer, *b, *f, *to, *amount};
  }
  if (w.size() == 6 && w[0] == "balance" && w[1] == "of" && w[3] == "in" && w[4] == "bank") {
    auto f = account(w[2]);
    auto b = bank(w[5]);
    if (!f || !b) return std::nullopt;
    return request{request::kind::balance, *b, *f, 0, 0};
  }
  if (w.size() == 3 && w[0] == "audit" && w[1] == "bank") {
    auto b = bank(w[2]);
    if (!b) return std::nullopt;
    return request{request::kind::audit, *b, 0, 0, 0};
  }
  return std::nullopt;
}

inline std::optional<answer> answer_from_text(std::string_view t) {
  if (t == "ok") return answer{};
  if (t == "insufficient funds") return answer{answer::status::insufficient, {}};
  if (t == "malformed") return answer{answer::status::malformed, {}};
  answer a;
  while (!t.empty()) {
    const auto c = t.find(',');
    auto n = detail::number(t.substr(0, c));
    if (!n) return std::nullopt;
    a.balances.push_back(*n);
    if (c == std::string_view::npos) break;
    t.remove_prefix(c + 1);
  }
  if (a.balances.empty()) return std::nullopt;
  return a;
}

// ------------------------------------------------------------------ the model

/// The specification, for one bank: written apart from the ledger on purpose, as the
/// plain statement of what a transfer does, so that the ledger's bugs are not the
/// model's. Its states conserve money and never go below zero, so an answer that shows
/// otherwise matches no linearization.
struct model {
  using input = request;
  using output = answer;
  using state = bank_balances;

  state init() const {
    state s;
    s.fill(opening_balance);
    return s;
  }
  output step(state& s, const input& in) const {
    switch (in.what) {
      case request::kind::transfer:
        if (s[in.from] < in.amount) return {answer::status::insufficient, {}};
        s[in.from] -= in.amount;
        s[in.to] += in.amount;
        return {};
      case request::kind::balance: return {answer::status::ok, {s[in.from]}};
      case request::kind::audit: return {answer::status::ok, std::vector<std::int64_t>(s.begin(), s.end())};
    }
    return {answer::status::malformed, {}};
  }
  std::string partition(const input& in) const { return "bank " + std::to_string(in.bank); }
  bool read_only(const input& in) const { return in.what != request::kind::transfer; }
  std::uint64_t hash(const state& s) const {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (auto v : s) h = (h ^ static_cast<std::uint64_t>(v)) * 0x100000001b3ull;
    return h;
  }
  std::string input_text(const input& in) const { return to_text(in); }
  std::string output_text(const output& out) const { return to_text(out); }
  std::string state_text(const state& s) const { return to_text(answer{answer::status::ok, {s.begin(), s.end()}}); }
  std::optional<input> parse_input(std::string_view t) const { return request_from_text(t); }
  std::optional<output> parse_output(std::string_view t) const { return answer_from_text(t); }
};
static_assert(raftkit::sim::model<model>);

// ------------------------------------------------------------------ the scenario

/// What the simulator runs: ledgers on every node, clients sending transfers (half),
/// balance reads and audits to `keys` banks at a time.
class scenario {
 public:
  using state_machine_type = state_machine;
  using model_type = model;

  explicit scenario(const raftkit::sim::run_options& o) : banks_(o.keys, o.ops_per_key) {}

  state_machine make_state_machine(raftkit::node_id id) {
#ifdef LEDGER_BROKEN_RESTART
    // The bug: the balances live in a store that survives the node's crash.
    auto& kept = kept_[id];
    if (!kept) kept = std::make_shared<book>();
    return state_machine(kept);
#else
    (void)id;
    return state_machine(std::make_shared<book>());
#endif
  }

  raftkit::sim::request<request> next(raftkit::sim::workload_context& ctx) {
    raftkit::sim::request<request> r;
    r.input.bank = static_cast<std::uint32_t>(banks_.take(ctx));
    const auto roll = ctx.below(4);
    if (roll < 2) {
      r.input.what = request::kind::transfer;
      r.input.from = static_cast<std::uint8_t>(ctx.below(accounts_per_bank));
      r.input.to = static_cast<std::uint8_t>((r.input.from + 1 + ctx.below(accounts_per_bank - 1)) % accounts_per_bank);
      r.input.amount = 1 + static_cast<std::int64_t>(ctx.below(60));
    } else {
      r.input.what = roll == 2 ? request::kind::balance : request::kind::audit;
      r.input.from = static_cast<std::uint8_t>(ctx.below(accounts_per_bank));
      r.read = true;
    }
    return r;
  }

  raftkit::shared_bytes encode(const request& r) const { return ::ledger::encode(r); }
  answer output(const request&, const answer& a) const { return a; }
  void finished(const request& r, raftkit::sim::op_outcome o) {
    if (o != raftkit::sim::op_outcome::failed) banks_.recorded(r.bank);
  }

 private:
  raftkit::sim::partition_rotation banks_;
#ifdef LEDGER_BROKEN_RESTART
  std::map<raftkit::node_id, std::shared_ptr<book>> kept_;
#endif
};
static_assert(raftkit::sim::scenario<scenario>);

}  // namespace ledger
