#pragma once
/// \file RAFTKIT_ASSERT: a broken invariant stops the node.
///
/// Users may define RAFTKIT_ASSERT before including any raftkit header to route
/// failures into their own handler (it must not return).

#include <cstdio>
#include <cstdlib>

namespace raftkit::detail {
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line,
                                     const char* msg) noexcept {
  std::fprintf(stderr, "raftkit: assertion failed: %s (%s) at %s:%d\n", expr,
               msg ? msg : "", file, line);
  std::abort();
}
}  // namespace raftkit::detail

#ifndef RAFTKIT_ASSERT
/// Checks an invariant; on failure prints the expression and aborts.
#define RAFTKIT_ASSERT(cond, msg)                                               \
  ((cond) ? static_cast<void>(0)                                               \
          : ::raftkit::detail::assert_fail(#cond, __FILE__, __LINE__, (msg)))
#endif
