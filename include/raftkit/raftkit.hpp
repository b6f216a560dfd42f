#pragma once
/// \file Includes every public raftkit header that needs nothing beyond the standard
/// library. The Asio parts (raftkit/asio/...) and the wire codec (raftkit/wire.hpp,
/// cereal) are included separately, so a user who does not need them pays nothing.

#include "raftkit/assert.hpp"
#include "raftkit/clock.hpp"
#include "raftkit/config.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/manual_clock.hpp"
#include "raftkit/membership.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/memory/transport.hpp"
#include "raftkit/message.hpp"
#include "raftkit/node.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/status.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/types.hpp"
