#pragma once
/// Names of the `Field` enum (spec §11), looked up by number; unknown numbers render as decimal
/// digits (spec §8.8: `.../v/999`). Pure, any thread.
#include <string>
#include <string_view>

namespace ts::pipeline {

/// The Field enum value name for `key`, or empty when the number is not in the enum.
std::string_view field_name(int key);

/// Appends the name, or the decimal number for keys outside the enum.
void append_field_name(std::string& out, int key);

}  // namespace ts::pipeline
