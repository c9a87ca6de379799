// The Tesla refresh token (review M4): which one start-up uses, and how a rotated one is saved.
#include "fleet_bridge.hpp"

#include <gtest/gtest.h>

#include <map>

#include "auth.hpp"
#include "storage/database.hpp"
#include "storage/errc.hpp"
#include "support/temp_dir.hpp"

namespace ts::api {
namespace {

using namespace std::chrono_literals;

TEST(RefreshTokenChoice, SavedRotatedTokenWinsWhileTheEnvironmentIsUnchanged) {
  const auto seed = token_hash("env-1");
  auto c = choose_refresh_token("env-1", std::string("rotated-3"), seed);
  EXPECT_EQ(c.token, "rotated-3");
  EXPECT_FALSE(c.save_token);
  EXPECT_FALSE(c.save_seed);
}

TEST(RefreshTokenChoice, ChangedEnvironmentTokenWins) {
  auto c = choose_refresh_token("env-2", std::string("rotated-3"), token_hash("env-1"));
  EXPECT_EQ(c.token, "env-2");
  EXPECT_TRUE(c.save_token);
  EXPECT_TRUE(c.save_seed);
}

TEST(RefreshTokenChoice, FirstStartSeedsFromTheEnvironment) {
  auto c = choose_refresh_token("env-1", std::nullopt, std::nullopt);
  EXPECT_EQ(c.token, "env-1");
  EXPECT_TRUE(c.save_token);
  EXPECT_TRUE(c.save_seed);
  auto empty_saved = choose_refresh_token("env-1", std::string(), std::nullopt);
  EXPECT_EQ(empty_saved.token, "env-1");
}

TEST(RefreshTokenChoice, NoEnvironmentTokenUsesTheSavedOne) {
  EXPECT_EQ(choose_refresh_token("", std::string("rotated"), std::nullopt).token, "rotated");
  EXPECT_EQ(choose_refresh_token("", std::nullopt, std::nullopt).token, "");
}

TEST(RefreshTokenChoice, SavedTokenWithoutASeedKeepsWinningAndRecordsTheSeed) {
  // Saved by a version that did not record the seed: the saved token may be the rotated
  // descendant of the environment's, so it stays; the seed is recorded from now on.
  auto c = choose_refresh_token("env-1", std::string("rotated"), std::nullopt);
  EXPECT_EQ(c.token, "rotated");
  EXPECT_FALSE(c.save_token);
  EXPECT_TRUE(c.save_seed);
}

// A settings table whose writes fail `fail_next` times.
struct FlakySettings {
  std::map<std::string, std::string, std::less<>> values;
  int fail_next = 0;
  int writes = 0;
  RefreshTokenStore::Write writer() {
    return [this](std::string_view key, std::string_view value) -> Result<void> {
      ++writes;
      if (fail_next > 0) {
        --fail_next;
        return make_error_code(storage::errc::unavailable);
      }
      values[std::string(key)] = std::string(value);
      return {};
    };
  }
};

TEST(RefreshTokenStore, FailedSaveIsRetriedWithBackoffAndCounted) {
  FlakySettings settings;
  settings.fail_next = 2;
  core::MetricsRegistry metrics;
  std::vector<std::chrono::milliseconds> slept;
  RefreshTokenStore store(settings.writer(), &metrics, {10ms, 20ms, 40ms},
                          [&](std::chrono::milliseconds d) { slept.push_back(d); });
  EXPECT_TRUE(store.save("rotated-1"));
  EXPECT_EQ(settings.values[std::string(kRefreshTokenSetting)], "rotated-1");
  EXPECT_EQ(slept, (std::vector<std::chrono::milliseconds>{10ms, 20ms}));
  EXPECT_EQ(store.failures(), 2u);
  EXPECT_FALSE(store.pending());
  EXPECT_NE(
      metrics.render_prometheus().find("teslasync_fleet_api_refresh_token_save_failures_total 2"),
      std::string::npos);
}

TEST(RefreshTokenStore, StillFailingStaysPendingUntilTheNextTokenEvent) {
  FlakySettings settings;
  settings.fail_next = 100;
  RefreshTokenStore store(settings.writer(), nullptr, {1ms, 1ms}, [](std::chrono::milliseconds) {});
  EXPECT_FALSE(store.save("rotated-1"));
  EXPECT_EQ(settings.writes, 3) << "one try and two retries";
  EXPECT_TRUE(store.pending());
  EXPECT_EQ(store.failures(), 3u);
  settings.fail_next = 0;
  EXPECT_TRUE(store.save("rotated-2"));
  EXPECT_FALSE(store.pending());
  EXPECT_EQ(settings.values[std::string(kRefreshTokenSetting)], "rotated-2");
}

TEST(RefreshTokenStore, LoadAtStartUpSeedsAndLaterPrefersTheRotatedToken) {
  testsupport::TempDir dir("ts-refresh");
  auto opened = storage::open_database("", dir.path());
  ASSERT_TRUE(opened);
  auto& db = **opened;
  RefreshTokenStore store(db, nullptr);
  EXPECT_EQ(load_refresh_token(db, "env-1", store), "env-1");
  EXPECT_EQ(**db.get_setting(kRefreshTokenSeedSetting), token_hash("env-1"));
  ASSERT_TRUE(store.save("rotated-1"));  // Tesla rotated it
  EXPECT_EQ(load_refresh_token(db, "env-1", store), "rotated-1") << "restart, same environment";
  EXPECT_EQ(load_refresh_token(db, "env-2", store), "env-2") << "the operator set a new one";
  EXPECT_EQ(**db.get_setting(kRefreshTokenSetting), "env-2");
  EXPECT_EQ(load_refresh_token(db, "env-2", store), "env-2");
}

}  // namespace
}  // namespace ts::api
