#include "vehicle_link/socket_id.hpp"

#include <gtest/gtest.h>

namespace ts::vehicle_link {
namespace {

TEST(SocketId, AcceptsEveryUuidFormOfTheReference) {
  const std::string want = "00000000-0000-4000-8000-000000000948";
  EXPECT_EQ(parse_uuid("00000000-0000-4000-8000-000000000948"), want);
  EXPECT_EQ(parse_uuid("{00000000-0000-4000-8000-000000000948}"), want);
  EXPECT_EQ(parse_uuid("urn:uuid:00000000-0000-4000-8000-000000000948"), want);
  EXPECT_EQ(parse_uuid("00000000000040008000000000000948"), want);
  EXPECT_EQ(parse_uuid("8F0C0A6E-2F0E-4B8A-9D53-0D7C9F1C2F11"), "8f0c0a6e-2f0e-4b8a-9d53-0d7c9f1c2f11");
}

TEST(SocketId, InvalidHeaderGetsARandomV4) {
  for (const char* bad : {"", "tx-1", "00000000-0000-4000-8000-00000000094", "zzzzzzzz-0000-4000-8000-000000000948"}) {
    EXPECT_FALSE(parse_uuid(bad)) << bad;
    auto id = socket_id_from_header(bad);
    ASSERT_TRUE(parse_uuid(id)) << id;
    EXPECT_EQ(id[14], '4');
  }
  EXPECT_NE(random_uuid_v4(), random_uuid_v4());
}

}  // namespace
}  // namespace ts::vehicle_link
