#pragma once
/// \file The wire codec: cereal serialisation of raftkit's messages and the frame that
/// carries one message on a byte stream.
///
/// A frame is a fixed 32-byte little-endian header followed by a body written with
/// cereal's PortableBinaryArchive:
///
/// | offset | size | field                                                    |
/// |--------|------|----------------------------------------------------------|
/// | 0      | 4    | magic `"RFTK"` (0x4B544652)                              |
/// | 4      | 2    | protocol version (2)                                     |
/// | 6      | 1    | message type (1..max_message_type) or `handshake_type`   |
/// | 7      | 1    | flags (none defined yet; must be 0)                      |
/// | 8      | 8    | cluster id                                               |
/// | 16     | 4    | body length in bytes                                     |
/// | 20     | 4    | CRC-32C of the body                                      |
/// | 24     | 4    | CRC-32C of header bytes 0..23                            |
/// | 28     | 4    | reserved, must be 0                                      |
///
/// The header carries its own CRC so a corrupt length is refused before a reader waits
/// for (or allocates) a body that never was. Decoding never throws and never trusts a
/// length it has not bounded: every size read from the body is checked against the
/// bytes that remain before anything is allocated.
///
/// This header needs cereal but no Asio: the simulator and tests can use it alone.

#include <cereal/archives/portable_binary.hpp>
#include <cereal/cereal.hpp>

#include <cstddef>
#include <cstdint>
#include <istream>
#include <limits>
#include <ostream>
#include <span>
#include <stdexcept>
#include <streambuf>
#include <system_error>
#include <type_traits>
#include <vector>

#include "raftkit/detail/crc32c.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/message.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

namespace detail {
/// A read-only streambuf over a span: decoding reads the received bytes in place.
class span_buf final : public std::streambuf {
 public:
  explicit span_buf(std::span<const std::byte> in) {
    // std::streambuf wants char*; it is never written through (no put area).
    char* p = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
    setg(p, p, p + in.size());
  }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(egptr() - gptr()); }
};

/// The wire decoder's archive: a portable binary archive that knows how many bytes are
/// left, so size fields can be checked before they allocate.
class bounded_input_archive final : public cereal::PortableBinaryInputArchive {
 public:
  bounded_input_archive(std::istream& is, const span_buf& buf)
      : cereal::PortableBinaryInputArchive(is), buf_(buf) {}
  std::size_t remaining() const noexcept { return buf_.remaining(); }

 private:
  const span_buf& buf_;
};

/// Bytes left to read when `ar` is the bounded wire decoder; unbounded otherwise
/// (a caller reading from its own trusted stream).
template <class Archive>
std::size_t readable_bytes(Archive& ar) noexcept {
  if constexpr (std::is_base_of_v<cereal::PortableBinaryInputArchive, Archive>) {
    if (auto* a = dynamic_cast<const bounded_input_archive*>(&ar)) return a->remaining();
  }
  return std::numeric_limits<std::size_t>::max();
}

/// Reads a u8 that must be a bool; other values are refused rather than stored into a
/// bool (which would be undefined behaviour).
template <class Archive>
bool load_bool(Archive& ar) {
  std::uint8_t v = 0;
  ar(v);
  if (v > 1) throw cereal::Exception("raftkit: bool out of range");
  return v != 0;
}

/// Smallest encoding of one entry (term, index, type, payload size): bounds an entry
/// count against the bytes left.
inline constexpr std::size_t min_entry_encoding = 8 + 8 + 1 + 8;
}  // namespace detail

/// cereal: a payload is its size then its bytes. Loading allocates one buffer.
template <class Archive>
void save(Archive& ar, const shared_bytes& b) {
  ar(cereal::make_size_tag(static_cast<cereal::size_type>(b.size())));
  if (!b.empty()) ar(cereal::binary_data(b.data(), b.size()));
}

template <class Archive>
void load(Archive& ar, shared_bytes& b) {
  cereal::size_type n = 0;
  ar(cereal::make_size_tag(n));
  if (n > detail::readable_bytes(ar)) throw cereal::Exception("raftkit: payload exceeds input");
  shared_bytes out = shared_bytes::allocate(static_cast<std::size_t>(n));
  if (n) ar(cereal::binary_data(out.mutable_data(), static_cast<std::size_t>(n)));
  b = std::move(out);
}

/// cereal: an entry is term, index, type, payload.
template <class Archive>
void save(Archive& ar, const entry& e) {
  ar(e.term, e.index, static_cast<std::uint8_t>(e.type), e.payload);
}

template <class Archive>
void load(Archive& ar, entry& e) {
  std::uint8_t type = 0;
  ar(e.term, e.index, type);
  if (type > static_cast<std::uint8_t>(entry_type::config))
    throw cereal::Exception("raftkit: unknown entry type");
  e.type = static_cast<entry_type>(type);
  ar(e.payload);
}

/// cereal: a batch is a count then its entries.
template <class Archive>
void save(Archive& ar, const entry_batch& batch) {
  ar(cereal::make_size_tag(static_cast<cereal::size_type>(batch.size())));
  for (const entry& e : batch) ar(e);
}

template <class Archive>
void load(Archive& ar, entry_batch& batch) {
  cereal::size_type n = 0;
  ar(cereal::make_size_tag(n));
  if (n > detail::readable_bytes(ar) / detail::min_entry_encoding)
    throw cereal::Exception("raftkit: entry count exceeds input");
  auto& items = batch.items();
  items.clear();
  items.reserve(static_cast<std::size_t>(n));
  for (cereal::size_type i = 0; i < n; ++i) {
    entry e;
    ar(e);
    items.push_back(std::move(e));
  }
}

/// cereal: every field of a message in declaration order; the type travels in the frame
/// header too, and the decoder checks they agree.
template <class Archive>
void save(Archive& ar, const message& m) {
  ar(static_cast<std::uint8_t>(m.type), m.from, m.to, m.term, m.log_index, m.log_term,
     m.commit, static_cast<std::uint8_t>(m.reject), m.flags, m.hint_index, m.hint_term,
     m.request_id, m.boot_id, m.received_index, m.code, m.context, m.snapshot_offset, m.snapshot_size,
     m.snapshot_crc, m.data, m.config, m.entries);
}

template <class Archive>
void load(Archive& ar, message& m) {
  std::uint8_t type = 0;
  ar(type);
  if (type == 0 || type > max_message_type) throw cereal::Exception("raftkit: unknown message type");
  m.type = static_cast<message_type>(type);
  ar(m.from, m.to, m.term, m.log_index, m.log_term, m.commit);
  m.reject = detail::load_bool(ar);
  ar(m.flags, m.hint_index, m.hint_term, m.request_id, m.boot_id, m.received_index, m.code, m.context,
     m.snapshot_offset, m.snapshot_size, m.snapshot_crc, m.data, m.config, m.entries);
}

namespace wire {

inline constexpr std::uint32_t magic = 0x4B544652;  ///< "RFTK" in little-endian order
/// Version 2: messages carry boot_id, received_index, code and context (fields of their own
/// instead of reusing request_id, commit and hint_index), forwards carry batches, and
/// read_index / read_index_reply exist.
inline constexpr std::uint16_t protocol_version = 2;
inline constexpr std::size_t header_size = 32;
/// The type byte of a handshake frame: outside message_type's range so it can never be
/// mistaken for a Raft message.
inline constexpr std::uint8_t handshake_type = 0xFF;
inline constexpr std::uint32_t default_max_frame_size = 16u << 20;

/// The first frame on a connection: who is speaking, and to whom it thinks it speaks.
/// The cluster id travels in the frame header.
///
/// Its body has fixed-width fields only (the archive's endianness byte, `from`, `to`), so
/// every handshake frame has a body of exactly `handshake_body_size` bytes and
/// `decode_header` refuses a handshake header claiming any other length. A reader
/// therefore never waits for, or allocates, more than that for a peer that has not yet
/// said who it is.
struct handshake {
  node_id from = no_node;
  node_id to = no_node;
  friend bool operator==(const handshake&, const handshake&) = default;
};

template <class Archive>
void serialize(Archive& ar, handshake& h) {
  ar(h.from, h.to);
}

/// The encoded size of a handshake body (see `handshake`).
inline constexpr std::uint32_t handshake_body_size = 1 + 2 * sizeof(node_id);

/// A validated frame header.
struct frame_header {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint64_t cluster_id = 0;
  std::uint32_t body_length = 0;
  std::uint32_t body_crc = 0;
};

/// What a decoder accepts.
struct decode_options {
  std::uint64_t cluster_id = 0;                          ///< frames of other clusters are refused
  std::uint32_t max_frame_size = default_max_frame_size; ///< header plus body
};

namespace detail {
template <class T>
void put_le(std::byte* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<std::byte>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xFFu);
}

template <class T>
T get_le(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(p[i])) << (8 * i);
  return static_cast<T>(v);
}

/// A streambuf that appends to a byte vector, so frames are encoded in place with no
/// intermediate string.
class append_buf final : public std::streambuf {
 public:
  explicit append_buf(std::vector<std::byte>& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    auto* b = reinterpret_cast<const std::byte*>(s);
    out_.insert(out_.end(), b, b + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof()))
      out_.push_back(static_cast<std::byte>(traits_type::to_char_type(c)));
    return traits_type::not_eof(c);
  }

 private:
  std::vector<std::byte>& out_;
};

/// Writes a header for a body of `body` bytes at `at`, computing both CRCs.
inline void write_header(std::byte* at, std::uint8_t type, std::uint64_t cluster_id,
                         std::span<const std::byte> body) noexcept {
  put_le<std::uint32_t>(at + 0, magic);
  put_le<std::uint16_t>(at + 4, protocol_version);
  at[6] = static_cast<std::byte>(type);
  at[7] = std::byte{0};
  put_le<std::uint64_t>(at + 8, cluster_id);
  put_le<std::uint32_t>(at + 16, static_cast<std::uint32_t>(body.size()));
  put_le<std::uint32_t>(at + 20, raftkit::detail::crc32c(body));
  put_le<std::uint32_t>(at + 24, raftkit::detail::crc32c({at, 24}));
  put_le<std::uint32_t>(at + 28, 0);
}

/// Appends a header and a cereal body for `value`; returns the frame's size.
template <class T>
std::size_t append_frame(std::uint8_t type, const T& value, std::uint64_t cluster_id,
                         std::vector<std::byte>& out) {
  const std::size_t start = out.size();
  out.resize(start + header_size);
  {
    append_buf buf(out);
    std::ostream os(&buf);
    cereal::PortableBinaryOutputArchive ar(os);
    ar(value);
  }
  const std::size_t body = out.size() - start - header_size;
  if (body > std::numeric_limits<std::uint32_t>::max()) {
    out.resize(start);
    throw std::length_error("raftkit: frame body exceeds 4 GiB");
  }
  write_header(out.data() + start, type, cluster_id, {out.data() + start + header_size, body});
  return header_size + body;
}

/// Decodes a cereal body that must be consumed exactly.
template <class T>
std::error_code decode_value(std::span<const std::byte> body, T& out) noexcept {
  try {
    raftkit::detail::span_buf buf(body);
    std::istream is(&buf);
    raftkit::detail::bounded_input_archive ar(is, buf);
    ar(out);
    if (buf.remaining() != 0) return errc::bad_message;  // trailing bytes: not our encoder
    return {};
  } catch (...) {
    // cereal::Exception on a short or invalid body, bad_alloc in the worst case: either
    // way the frame is refused and the caller keeps running.
    return errc::bad_message;
  }
}
}  // namespace detail

/// Appends one frame carrying `m` to `out`, so many frames can be coalesced into one
/// buffer. Returns the number of bytes appended.
inline std::size_t encode_frame(const message& m, std::uint64_t cluster_id,
                                std::vector<std::byte>& out) {
  return detail::append_frame(static_cast<std::uint8_t>(m.type), m, cluster_id, out);
}

/// Appends one handshake frame to `out`. Returns the number of bytes appended.
inline std::size_t encode_handshake(const handshake& h, std::uint64_t cluster_id,
                                    std::vector<std::byte>& out) {
  return detail::append_frame(handshake_type, h, cluster_id, out);
}

/// Validates the first `header_size` bytes of a frame: magic, version, type (a message
/// type or the handshake), flags, cluster id, the header's own CRC, and the body
/// length against `opt.max_frame_size` (a handshake's against its fixed size).
/// \returns bad_message or too_large on failure; `out` is then unspecified.
inline std::error_code decode_header(std::span<const std::byte> bytes, const decode_options& opt,
                                     frame_header& out) noexcept {
  if (bytes.size() < header_size) return errc::bad_message;
  const std::byte* p = bytes.data();
  if (detail::get_le<std::uint32_t>(p) != magic) return errc::bad_message;
  if (detail::get_le<std::uint32_t>(p + 24) != raftkit::detail::crc32c({p, 24})) return errc::bad_message;
  if (detail::get_le<std::uint16_t>(p + 4) != protocol_version) return errc::bad_message;
  out.type = std::to_integer<std::uint8_t>(p[6]);
  out.flags = std::to_integer<std::uint8_t>(p[7]);
  if ((out.type == 0 || out.type > max_message_type) && out.type != handshake_type)
    return errc::bad_message;
  if (out.flags != 0 || detail::get_le<std::uint32_t>(p + 28) != 0) return errc::bad_message;
  out.cluster_id = detail::get_le<std::uint64_t>(p + 8);
  if (out.cluster_id != opt.cluster_id) return errc::bad_message;
  out.body_length = detail::get_le<std::uint32_t>(p + 16);
  out.body_crc = detail::get_le<std::uint32_t>(p + 20);
  if (opt.max_frame_size < header_size || out.body_length > opt.max_frame_size - header_size)
    return errc::too_large;
  if (out.type == handshake_type && out.body_length != handshake_body_size) return errc::bad_message;
  return {};
}

/// Decodes the body of a message frame whose header `h` was validated.
inline std::error_code decode_body(const frame_header& h, std::span<const std::byte> body,
                                   message& out) noexcept {
  if (h.type == handshake_type || body.size() != h.body_length) return errc::bad_message;
  if (raftkit::detail::crc32c(body) != h.body_crc) return errc::bad_message;
  if (auto ec = detail::decode_value(body, out)) return ec;
  if (static_cast<std::uint8_t>(out.type) != h.type) return errc::bad_message;
  return {};
}

/// Decodes the body of a handshake frame whose header `h` was validated.
inline std::error_code decode_body(const frame_header& h, std::span<const std::byte> body,
                                   handshake& out) noexcept {
  if (h.type != handshake_type || body.size() != h.body_length) return errc::bad_message;
  if (raftkit::detail::crc32c(body) != h.body_crc) return errc::bad_message;
  return detail::decode_value(body, out);
}

/// Decodes one whole frame from the front of `bytes` into `out` (a message or a
/// handshake). On success `*consumed` (if given) is the frame's size.
/// A buffer shorter than the frame it starts is `bad_message` (truncated).
template <class T>
std::error_code decode_frame(std::span<const std::byte> bytes, const decode_options& opt, T& out,
                             std::size_t* consumed = nullptr) noexcept {
  frame_header h;
  if (auto ec = decode_header(bytes, opt, h)) return ec;
  if (bytes.size() - header_size < h.body_length) return errc::bad_message;
  if (auto ec = decode_body(h, bytes.subspan(header_size, h.body_length), out)) return ec;
  if (consumed) *consumed = header_size + h.body_length;
  return {};
}

}  // namespace wire

}  // namespace raftkit
