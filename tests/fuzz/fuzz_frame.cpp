// libFuzzer target for the wire decoder (raftkit/wire.hpp). See README.md.
//
// The first input byte picks a mode: even feeds the rest to the decoder as a raw frame;
// odd wraps what follows the second byte as the body of a frame with valid length and
// checksums, since a fuzzer would otherwise rarely get past the two CRCs to the body
// decoder; the second byte picks the frame type. (It used to be the body's first byte as
// well, which made every wrapped message's type disagree with its header, so no wrapped
// message could ever decode.) Whatever is accepted must re-encode to a frame that
// decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "raftkit/wire.hpp"

namespace {
constexpr std::uint64_t cluster = 0xC1;
constexpr std::uint32_t max_frame = 1u << 20;

template <class T>
void check_round_trip(const T& value, std::uint8_t type) {
  std::vector<std::byte> again;
  if constexpr (std::is_same_v<T, raftkit::message>) {
    raftkit::wire::encode_frame(value, cluster, again);
  } else {
    raftkit::wire::encode_handshake(value, cluster, again);
  }
  T back;
  if (raftkit::wire::decode_frame(std::span<const std::byte>(again), {cluster, max_frame}, back) ||
      !(back == value) || static_cast<std::uint8_t>(again[6]) != type)
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool wrap = data[0] & 1;
  if (wrap && size < 2) return 0;
  const std::size_t skip = wrap ? 2 : 1;
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + skip), size - skip);
  std::vector<std::byte> frame;
  if (wrap) {
    // Header from a real frame of the type named by the second byte, then the body.
    const std::uint8_t pick = data[1];
    frame.resize(raftkit::wire::header_size);
    const std::uint8_t type = (pick & 0x10) ? raftkit::wire::handshake_type
                                            : static_cast<std::uint8_t>(1 + pick % raftkit::max_message_type);
    frame.insert(frame.end(), rest.begin(), rest.end());
    raftkit::wire::detail::write_header(frame.data(), type, cluster,
                                        std::span<const std::byte>(frame).subspan(raftkit::wire::header_size));
  } else {
    frame.assign(rest.begin(), rest.end());
  }
  const std::span<const std::byte> bytes(frame);
  raftkit::message m;
  if (!raftkit::wire::decode_frame(bytes, {cluster, max_frame}, m))
    check_round_trip(m, static_cast<std::uint8_t>(m.type));
  raftkit::wire::handshake h;
  if (!raftkit::wire::decode_frame(bytes, {cluster, max_frame}, h))
    check_round_trip(h, raftkit::wire::handshake_type);
  return 0;
}
