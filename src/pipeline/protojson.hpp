#pragma once
/// The `transmit_decoded_records` JSON form (spec §7.3): Go protojson with EmitUnpopulated, enum
/// names, compact output. Pure, any thread.
#include <string>

#include <google/protobuf/message.h>

namespace ts::pipeline {

/// Appends the protojson of `message`; false when it cannot be encoded (a Timestamp outside
/// years 1-9999 or with nanos out of range), which the server answers with ERROR (§4 step 6).
bool append_protojson(std::string& out, const google::protobuf::Message& message);

}  // namespace ts::pipeline
