#pragma once
/// \file A move-only type-erased callable with small-buffer storage.
///
/// std::function needs copyable targets, and Asio handlers (use_future, awaitables) are
/// move-only; std::move_only_function is C++23. Targets up to `inline_size` bytes live
/// inside the object, so a typical completion (a lambda capturing a pointer or two)
/// costs no allocation.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace raftkit::detail {

template <class Signature>
class unique_function;

template <class R, class... Args>
class unique_function<R(Args...)> {
  static constexpr std::size_t inline_size = 48;

 public:
  unique_function() noexcept = default;
  unique_function(std::nullptr_t) noexcept {}

  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, unique_function> &&
             std::is_invocable_r_v<R, std::remove_cvref_t<F>&, Args...>)
  unique_function(F&& f) {  // NOLINT: implicit like std::function
    using T = std::remove_cvref_t<F>;
    if constexpr (sizeof(T) <= inline_size && alignof(T) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<T>) {
      ::new (static_cast<void*>(&storage_)) T(std::forward<F>(f));
      ops_ = &inline_ops<T>;
    } else {
      *reinterpret_cast<T**>(&storage_) = new T(std::forward<F>(f));
      ops_ = &heap_ops<T>;
    }
  }

  unique_function(unique_function&& o) noexcept : ops_(o.ops_) {
    if (ops_) ops_->move(&o.storage_, &storage_);
    o.ops_ = nullptr;
  }
  unique_function& operator=(unique_function&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = o.ops_;
      if (ops_) ops_->move(&o.storage_, &storage_);
      o.ops_ = nullptr;
    }
    return *this;
  }
  unique_function(const unique_function&) = delete;
  unique_function& operator=(const unique_function&) = delete;
  ~unique_function() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->call(&storage_, std::forward<Args>(args)...); }

 private:
  struct ops_t {
    R (*call)(void*, Args&&...);
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void*) noexcept;
  };
  template <class T>
  static constexpr ops_t inline_ops{
      [](void* s, Args&&... a) -> R { return (*static_cast<T*>(s))(std::forward<Args>(a)...); },
      [](void* from, void* to) noexcept {
        ::new (to) T(std::move(*static_cast<T*>(from)));
        static_cast<T*>(from)->~T();
      },
      [](void* s) noexcept { static_cast<T*>(s)->~T(); }};
  template <class T>
  static constexpr ops_t heap_ops{
      [](void* s, Args&&... a) -> R { return (**static_cast<T**>(s))(std::forward<Args>(a)...); },
      [](void* from, void* to) noexcept { *static_cast<T**>(to) = *static_cast<T**>(from); },
      [](void* s) noexcept { delete *static_cast<T**>(s); }};

  void reset() noexcept {
    if (ops_) ops_->destroy(&storage_);
    ops_ = nullptr;
  }

  alignas(std::max_align_t) std::byte storage_[inline_size];
  const ops_t* ops_ = nullptr;
};

}  // namespace raftkit::detail
