#pragma once
// A model of a counter for the simulator's tests: add n and be told the sum; add 0
// reads. It has the text forms, so it also reads and writes history files.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace test_models {

struct counter_model {
  using input = std::int64_t;
  using output = std::int64_t;
  using state = std::int64_t;
  state init() const { return 0; }
  output step(state& s, input add) const { return s += add; }
  bool read_only(input add) const { return add == 0; }
  std::string input_text(input add) const { return add == 0 ? "read" : "add " + std::to_string(add); }
  std::string output_text(output v) const { return std::to_string(v); }
  std::string state_text(state v) const { return std::to_string(v); }
  std::optional<input> parse_input(std::string_view t) const {
    if (t == "read") return 0;
    if (t.rfind("add ", 0) != 0) return std::nullopt;
    return std::stoll(std::string(t.substr(4)));
  }
  std::optional<output> parse_output(std::string_view t) const {
    if (t.empty() || t.find_first_not_of("-0123456789") != std::string_view::npos) return std::nullopt;
    return std::stoll(std::string(t));
  }
};

}  // namespace test_models
