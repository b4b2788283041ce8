#pragma once

// Podium's status-or-value type. The project picked std::expected (C++23); GCC 12 in C++20 mode
// does not ship it, so this is the subset of its interface the code uses. When the toolchain
// moves to C++23 this header becomes `template <class T, class E> using Expected =
// std::expected<T, E>;` and nothing else changes.

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace podium {

template <class E>
class Unexpected {
 public:
  explicit Unexpected(E e) : error_(std::move(e)) {}
  E& error() & { return error_; }
  const E& error() const& { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_;
};

template <class E>
Unexpected(E) -> Unexpected<E>;

template <class T, class E>
class [[nodiscard]] Expected {
 public:
  using value_type = T;
  using error_type = E;

  template <class U = T, class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                  !std::is_same_v<std::decay_t<U>, Expected> &&
                                                  !std::is_same_v<std::decay_t<U>, Unexpected<E>>>>
  Expected(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}
  template <class G>
  Expected(Unexpected<G> u) : v_(std::in_place_index<1>, std::move(u.error())) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return checked<0>(); }
  const T& value() const& { return checked<0>(); }
  T&& value() && { return std::move(checked<0>()); }
  T& operator*() & { return checked<0>(); }
  const T& operator*() const& { return checked<0>(); }
  T* operator->() { return &checked<0>(); }
  const T* operator->() const { return &checked<0>(); }

  E& error() & { return checked<1>(); }
  const E& error() const& { return checked<1>(); }
  E&& error() && { return std::move(checked<1>()); }

 private:
  template <size_t I>
  auto& checked() {
    assert(v_.index() == I);
    return std::get<I>(v_);
  }
  template <size_t I>
  const auto& checked() const {
    assert(v_.index() == I);
    return std::get<I>(v_);
  }
  std::variant<T, E> v_;
};

// Expected<void, E>: success carries nothing.
template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <class G>
  Expected(Unexpected<G> u) : error_(std::move(u.error())), ok_(false) {}
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const {
    assert(!ok_);
    return error_;
  }
  E& error() {
    assert(!ok_);
    return error_;
  }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace podium
