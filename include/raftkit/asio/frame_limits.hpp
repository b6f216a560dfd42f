#pragma once
/// \file raftkit::asio::frame_limits: what a transport that sends each message as one
/// wire.hpp frame can carry, as the `transport_limits` a driver fits the engine to.
///
/// Shared by every transport built on the wire codec (tcp_transport, the Unix-socket
/// transport of examples/custom_transport), so the encoding's overheads are measured in
/// one place: by encoding, not by a hand-kept sum that would drift from the codec.

#include <cstddef>
#include <vector>

#include "raftkit/message.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/wire.hpp"

namespace raftkit::asio {

/// The limits of a framed transport whose frames are at most `max_frame_size` bytes and
/// whose per-peer bulk queue holds `max_queue_bytes` and `max_queue_messages`.
inline transport_limits frame_limits(std::size_t max_frame_size, std::size_t max_queue_bytes,
                                     std::size_t max_queue_messages) {
  // The codec writes fixed-width integers, so a frame's size is these overheads plus its
  // payload bytes whatever the field values are.
  static const std::size_t empty_frame = [] {
    std::vector<std::byte> out;
    return wire::encode_frame(message{}, 0, out);
  }();
  static const std::size_t per_entry = [] {
    message m;
    m.entries.push_back(entry{});
    std::vector<std::byte> out;
    return wire::encode_frame(m, 0, out) - empty_frame;
  }();
  transport_limits l;
  l.max_message_bytes = max_frame_size;
  l.max_queue_bytes = max_queue_bytes;
  l.max_queue_messages = max_queue_messages;
  l.message_overhead = empty_frame;
  l.entry_overhead = per_entry;
  return l;
}

}  // namespace raftkit::asio
