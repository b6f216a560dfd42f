// Tests for the wire codec (raftkit/wire.hpp) and the TCP transport
// (raftkit/asio/tcp_transport.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "raftkit/wire.hpp"

namespace {

using raftkit::entry;
using raftkit::entry_type;
using raftkit::errc;
using raftkit::message;
using raftkit::message_type;
using raftkit::shared_bytes;
namespace wire = raftkit::wire;

constexpr std::uint64_t test_cluster = 0xC1u;

std::span<const std::byte> as_span(const std::vector<std::byte>& v) { return {v.data(), v.size()}; }

/// A message of `type` with every field set to something distinct, and for the types
/// that carry entries, a batch with empty and non-empty payloads.
message sample_message(message_type type) {
  message m;
  m.type = type;
  m.from = 3;
  m.to = 5;
  m.term = 0x1122334455667788ull;
  m.log_index = 41;
  m.log_term = 7;
  m.commit = 40;
  m.reject = true;
  m.flags = raftkit::message_flags::pre_vote;
  m.hint_index = 12;
  m.hint_term = 6;
  m.request_id = 0xABCDEFull;
  if (type == message_type::append_entries || type == message_type::forward_proposal) {
    m.entries.push_back({7, 42, entry_type::noop, {}});
    m.entries.push_back({7, 43, entry_type::normal, shared_bytes::copy_of("set x=1")});
    m.entries.push_back({8, 44, entry_type::config, shared_bytes::copy_of(std::string(1000, 'z'))});
  }
  return m;
}

std::vector<message_type> all_types() {
  std::vector<message_type> v;
  for (std::uint8_t t = 1; t <= raftkit::max_message_type; ++t) v.push_back(static_cast<message_type>(t));
  return v;
}

std::vector<std::byte> frame_of(const message& m, std::uint64_t cluster = test_cluster) {
  std::vector<std::byte> out;
  wire::encode_frame(m, cluster, out);
  return out;
}

std::error_code decode(const std::vector<std::byte>& bytes, message& out,
                       std::uint32_t max_frame = wire::default_max_frame_size) {
  return wire::decode_frame(as_span(bytes), wire::decode_options{test_cluster, max_frame}, out);
}

/// Rewrites the header CRC after a test edits header bytes, so the check under test is
/// the one that fires rather than the header checksum.
void reseal_header(std::vector<std::byte>& f) {
  wire::detail::put_le<std::uint32_t>(f.data() + 24, wire::detail::crc32c({f.data(), 24}));
}

/// Replaces a frame's body with `body`, fixing length and both CRCs: a well-formed frame
/// whose body is whatever the test wants the decoder to face.
void replace_body(std::vector<std::byte>& f, std::span<const std::byte> body) {
  f.resize(wire::header_size);
  f.insert(f.end(), body.begin(), body.end());
  wire::detail::put_le<std::uint32_t>(f.data() + 16, static_cast<std::uint32_t>(body.size()));
  wire::detail::put_le<std::uint32_t>(f.data() + 20, wire::detail::crc32c(body));
  reseal_header(f);
}

}  // namespace

TEST_SUITE("asio") {

TEST_CASE("wire: every message type round-trips with its entries and payloads") {
  for (message_type t : all_types()) {
    CAPTURE(raftkit::to_string(t));
    const message m = sample_message(t);
    const auto f = frame_of(m);
    message r;
    std::size_t consumed = 0;
    REQUIRE_FALSE(wire::decode_frame(as_span(f), {test_cluster}, r, &consumed));
    CHECK(consumed == f.size());
    CHECK(r == m);
  }
}

TEST_CASE("wire: default-constructed message and empty payloads round-trip") {
  message m;
  m.entries.push_back({1, 1, entry_type::normal, {}});
  const auto f = frame_of(m);
  message r;
  REQUIRE_FALSE(decode(f, r));
  CHECK(r == m);
  CHECK(r.entries[0].payload.empty());
}

TEST_CASE("wire: frames appended to one buffer decode one after another") {
  std::vector<std::byte> buf;
  const auto types = all_types();
  for (message_type t : types) CHECK(wire::encode_frame(sample_message(t), test_cluster, buf) > wire::header_size);
  std::span<const std::byte> rest = as_span(buf);
  for (message_type t : types) {
    message r;
    std::size_t used = 0;
    REQUIRE_FALSE(wire::decode_frame(rest, {test_cluster}, r, &used));
    CHECK(r == sample_message(t));
    rest = rest.subspan(used);
  }
  CHECK(rest.empty());
}

TEST_CASE("wire: handshake round-trips and is not a message") {
  std::vector<std::byte> f;
  wire::encode_handshake({4, 9}, test_cluster, f);
  wire::handshake h;
  REQUIRE_FALSE(wire::decode_frame(as_span(f), {test_cluster}, h));
  CHECK(h == wire::handshake{4, 9});
  message m;
  CHECK(decode(f, m) == errc::bad_message);
  wire::handshake h2;
  CHECK(wire::decode_frame(as_span(frame_of(sample_message(message_type::request_vote))), {test_cluster}, h2) ==
        errc::bad_message);
}

TEST_CASE("wire: decoded payloads own their bytes") {
  auto f = frame_of(sample_message(message_type::append_entries));
  message r;
  REQUIRE_FALSE(decode(f, r));
  std::fill(f.begin(), f.end(), std::byte{0});
  CHECK(r.entries[1].payload.view() == "set x=1");
  CHECK(r.entries[1].payload.use_count() == 1);
}

TEST_CASE("wire: decoder rejects each kind of bad frame") {
  const message m = sample_message(message_type::append_entries);
  const auto good = frame_of(m);
  message r;
  REQUIRE_FALSE(decode(good, r));

  SUBCASE("bad magic") {
    auto f = good;
    f[0] ^= std::byte{1};
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("header checksum") {
    auto f = good;
    f[9] ^= std::byte{0x40};  // cluster id bit, header CRC left stale
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("unknown version") {
    auto f = good;
    wire::detail::put_le<std::uint16_t>(f.data() + 4, 2);
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("unknown type") {
    for (std::uint8_t t : {std::uint8_t{0}, std::uint8_t{raftkit::max_message_type + 1}, std::uint8_t{200}}) {
      auto f = good;
      f[6] = std::byte{t};
      reseal_header(f);
      CHECK(decode(f, r) == errc::bad_message);
    }
  }
  SUBCASE("header type disagrees with body type") {
    auto f = good;
    f[6] = std::byte{static_cast<std::uint8_t>(message_type::request_vote)};
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("unknown flags or reserved bits") {
    auto f = good;
    f[7] = std::byte{1};
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
    f = good;
    f[30] = std::byte{1};
    CHECK(decode(f, r) == errc::bad_message);  // not covered by the header CRC, checked anyway
  }
  SUBCASE("foreign cluster id") {
    const auto f = frame_of(m, test_cluster + 1);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("too large") {
    CHECK(decode(good, r, static_cast<std::uint32_t>(good.size())) == std::error_code{});
    CHECK(decode(good, r, static_cast<std::uint32_t>(good.size() - 1)) == errc::too_large);
    CHECK(decode(good, r, 0) == errc::too_large);
    auto f = good;
    wire::detail::put_le<std::uint32_t>(f.data() + 16, 0xFFFFFFFFu);
    reseal_header(f);
    CHECK(decode(f, r) == errc::too_large);
  }
  SUBCASE("body checksum mismatch") {
    auto f = good;
    f[wire::header_size + 5] ^= std::byte{0x10};
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("truncated header or body") {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, wire::header_size - 1, wire::header_size,
                          good.size() - 1}) {
      const std::vector<std::byte> f(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK(decode(f, r) == errc::bad_message);
    }
  }
  SUBCASE("body shorter than its fields, with a valid checksum") {
    auto f = good;
    const std::vector<std::byte> body(good.begin() + wire::header_size, good.end() - 10);
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("trailing bytes after the body") {
    auto f = good;
    std::vector<std::byte> body(good.begin() + wire::header_size, good.end());
    body.push_back(std::byte{0});
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("garbage body with a valid checksum") {
    auto f = good;
    std::vector<std::byte> body(64, std::byte{0xFF});
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("bool out of range") {
    // The reject flag sits after the endianness byte, type, five u64 fields.
    auto f = good;
    std::vector<std::byte> body(good.begin() + wire::header_size, good.end());
    const std::size_t reject_at = 1 + 1 + 6 * 8;
    REQUIRE(body[reject_at] == std::byte{1});
    body[reject_at] = std::byte{2};
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("payload or entry count larger than the body") {
    // A huge size field must be refused before it is allocated (the sanitizer build
    // would abort on a 2^60-byte request).
    message one;
    one.entries.push_back({1, 1, entry_type::normal, shared_bytes::copy_of("abc")});
    auto f = frame_of(one);
    std::vector<std::byte> body(f.begin() + wire::header_size, f.end());
    const std::size_t count_at = body.size() - (8 + 8 + 8 + 1 + 8 + 3);
    const std::size_t payload_size_at = body.size() - (8 + 3);
    REQUIRE(wire::detail::get_le<std::uint64_t>(body.data() + count_at) == 1);
    REQUIRE(wire::detail::get_le<std::uint64_t>(body.data() + payload_size_at) == 3);
    auto big_count = body;
    wire::detail::put_le<std::uint64_t>(big_count.data() + count_at, 1ull << 60);
    replace_body(f, big_count);
    CHECK(decode(f, r) == errc::bad_message);
    auto big_payload = body;
    wire::detail::put_le<std::uint64_t>(big_payload.data() + payload_size_at, 1ull << 60);
    replace_body(f, big_payload);
    CHECK(decode(f, r) == errc::bad_message);
    auto bad_entry_type = body;
    bad_entry_type[payload_size_at - 1] = std::byte{9};
    replace_body(f, bad_entry_type);
    CHECK(decode(f, r) == errc::bad_message);
  }
}

TEST_CASE("wire: random bytes and random mutations never crash; what decodes re-encodes") {
  std::mt19937_64 rng(20260611);
  std::uniform_int_distribution<int> byte(0, 255);
  message r;
  int accepted_random = 0;
  for (int i = 0; i < 10000; ++i) {
    std::vector<std::byte> buf(static_cast<std::size_t>(rng() % 200));
    for (auto& b : buf) b = static_cast<std::byte>(byte(rng));
    if (!decode(buf, r)) ++accepted_random;
  }
  CHECK(accepted_random == 0);  // random bytes cannot pass magic plus two CRCs

  std::vector<std::vector<std::byte>> seeds;
  for (message_type t : all_types()) seeds.push_back(frame_of(sample_message(t)));
  int rejected = 0;
  for (int i = 0; i < 10000; ++i) {
    auto f = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0: f[rng() % f.size()] ^= static_cast<std::byte>(1 + rng() % 255); break;
        case 1: f.resize(rng() % (f.size() + 1)); if (f.empty()) f.push_back(std::byte{0}); break;
        case 2: f.insert(f.begin() + static_cast<std::ptrdiff_t>(rng() % f.size()), static_cast<std::byte>(byte(rng))); break;
        default: {
          // Corrupt the body but keep the checksums valid, so the body decoder itself
          // faces the damage.
          if (f.size() > wire::header_size) {
            std::vector<std::byte> body(f.begin() + wire::header_size, f.end());
            body[rng() % body.size()] = static_cast<std::byte>(byte(rng));
            replace_body(f, body);
          }
        }
      }
    }
    message out;
    if (decode(f, out)) {
      ++rejected;
    } else {
      // Whatever the decoder accepts is a well-formed message: it encodes to a frame that
      // decodes to the same value.
      message again;
      REQUIRE_FALSE(decode(frame_of(out), again));
      CHECK(again == out);
    }
  }
  CHECK(rejected > 5000);
}

}  // TEST_SUITE("asio")
