#include "dispatch/logger/logger_dispatcher.hpp"

#include <gtest/gtest.h>

namespace ts::dispatch {
namespace {

TEST(LoggerDispatcher, LineCarriesMetadataAndJson) {
  pipeline::Record r;
  r.type = wire::RecordType::V;
  r.tx_type = "V";
  r.txid = "t1";
  r.vin = "VIN1";
  r.device_client_version = "1.0.0";
  r.received_at_ms = 42;
  wire::vehicle_data::Payload p;
  p.set_vin("VIN1");
  r.message = p;
  EXPECT_EQ(LoggerDispatcher::format(r),
            "record_payload vin=VIN1 metadata={\"device_client_version\":\"1.0.0\",\"receivedat\":"
            "\"42\",\"timestamp\":\"0\",\"txid\":\"t1\",\"txtype\":\"V\",\"version\":\"0\","
            "\"vin\":\"VIN1\"} data={\"data\":[],\"createdAt\":null,\"vin\":\"VIN1\",\"isResend\":false}");
}

TEST(LoggerDispatcher, OpaqueRecordsSayWhy) {
  pipeline::Record r;
  r.tx_type = "D4";
  EXPECT_NE(LoggerDispatcher::format(r).find("record_logging_error"), std::string::npos);
}

}  // namespace
}  // namespace ts::dispatch
