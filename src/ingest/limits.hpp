#pragma once
/// What the edge may name: the one place that decides which names and identifiers from a topic or
/// payload teslasync-api accepts. Everything here is keyed, indexed or labelled somewhere (L1,
/// Redis, signal_series, the unique keys of alerts, vehicle_errors and connectivity_events), so
/// each is bounded; a message that breaks a rule becomes a dead letter with the reason
/// (decode.cpp), counted in teslasync_ingest_dead_letters_total{reason}. Pure, any thread.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ts::ingest {

/// Alert names ("BMS_a079_SW_Dcdc_Isolation_Fault"), vehicle error names ("cloud_upload_error"):
/// Tesla's are under 64 bytes.
inline constexpr std::size_t kMaxEventNameBytes = 256;
/// Connection ids (a UUID), connectivity status and network interface.
inline constexpr std::size_t kMaxIdBytes = 128;

/// Dead-letter reasons of these rules (DeadLetter::reason starts with one of them).
inline constexpr std::string_view kReasonUnknownField = "unknown_field";
inline constexpr std::string_view kReasonTooLong = "too_long";

/// Why a signal name is refused ("unknown_field: <name>", the name cut to 64 bytes), or nullopt
/// when it is a name of the Field enum.
std::optional<std::string> signal_name_problem(std::string_view name);
/// Why an alert or error name, or a connection id/status, is refused ("too_long: <what> of N
/// bytes"), or nullopt.
std::optional<std::string> text_problem(std::string_view what, std::string_view value,
                                        std::size_t max_bytes);

}  // namespace ts::ingest
