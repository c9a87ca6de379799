#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace ts::core {
namespace {

TEST(Metrics, CountersWithLabelsRenderSortedWithHelpAndType) {
  MetricsRegistry reg;
  auto& records = reg.counter("record_total", "Records accepted.", {"record_type"});
  records.with({"V"}).inc(3);
  records.with({"alerts"}).inc();
  reg.counter("socket_err_total", "Write failures.").get().inc(2);
  std::string text = reg.render_prometheus();
  EXPECT_NE(text.find("# TYPE record_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("record_total{record_type=\"V\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("record_total{record_type=\"alerts\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("socket_err_total 2\n"), std::string::npos);
  EXPECT_LT(text.find("record_total"), text.find("socket_err_total"));
}

TEST(Metrics, SameLabelValuesReturnTheSameChild) {
  MetricsRegistry reg;
  auto& fam = reg.counter("x_total", "x", {"a"});
  EXPECT_EQ(&fam.with({"1"}), &fam.with({"1"}));
  EXPECT_NE(&fam.with({"1"}), &fam.with({"2"}));
}

TEST(Metrics, LabelValuesAreEscaped) {
  MetricsRegistry reg;
  reg.counter("unknown_message_type_error_total", "x", {"msg_type"}).with({"a\"b\\\n"}).inc();
  EXPECT_NE(reg.render_prometheus().find(R"(msg_type="a\"b\\\n")"), std::string::npos);
}

TEST(Metrics, GaugesAndCallbackGauges) {
  MetricsRegistry reg;
  reg.gauge("signal_count", "x", {"record_type"}).with({"V"}).add(2.5);
  reg.callback_gauge("num_connections", "Open vehicle connections.", [] { return 7.0; });
  std::string text = reg.render_prometheus();
  EXPECT_NE(text.find("signal_count{record_type=\"V\"} 2.5\n"), std::string::npos);
  EXPECT_NE(text.find("num_connections 7\n"), std::string::npos);
}

}  // namespace
}  // namespace ts::core

namespace ts::core {
namespace {
TEST(Metrics, CallbackCountersAreTypedAsCounters) {
  MetricsRegistry reg;
  reg.callback_counter("x_connects_total", "Connections.", [] { return 3.0; });
  auto text = reg.render_prometheus();
  EXPECT_NE(text.find("# TYPE x_connects_total counter\nx_connects_total 3\n"), std::string::npos);
}
}  // namespace
}  // namespace ts::core

namespace ts::core {
namespace {

TEST(Metrics, FamilyPastItsCapSendsNewLabelSetsToOneOverflowChildAndCountsThem) {
  MetricsRegistry reg;
  auto& fam = reg.counter("record_total", "x", {"record_type"}, 3);
  Counter* first = &fam.with({"a"});
  fam.with({"b"}).inc();
  fam.with({"c"}).inc();
  Counter& overflow = fam.with({"d"});
  overflow.inc();
  EXPECT_EQ(&fam.with({"e"}), &overflow) << "every new set past the cap shares one child";
  fam.with({"e"}).inc();
  EXPECT_EQ(&fam.with({"a"}), first) << "label sets seen before the cap keep their child";

  int children = 0;
  fam.for_each([&](const std::vector<std::string>&, const Counter&) { ++children; });
  EXPECT_EQ(children, 4) << "three children and the overflow child";
  const std::string text = reg.render_prometheus();
  EXPECT_NE(text.find("record_total{record_type=\"_overflow\"} 2\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("record_type=\"d\""), std::string::npos);
  EXPECT_NE(text.find("teslasync_metrics_label_overflow_total{family=\"record_total\"} 3\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, RenderedSizeStopsGrowingAtTheDefaultCap) {
  MetricsRegistry reg;
  auto& fam = reg.gauge("signal_count", "x", {"record_type", "vin"});
  EXPECT_EQ(fam.max_children(), kDefaultMaxChildren);
  for (std::size_t i = 0; i < kDefaultMaxChildren + 10; ++i)
    fam.with({"t" + std::to_string(i), "v"}).add(1);
  // Lines, not bytes: the two overflow values grow by a digit.
  auto lines = [&] { return std::ranges::count(reg.render_prometheus(), '\n'); };
  const auto at_cap = lines();
  for (std::size_t i = 0; i < 5000; ++i) fam.with({"u" + std::to_string(i), "v"}).add(1);
  EXPECT_EQ(lines(), at_cap);
  EXPECT_NE(reg.render_prometheus().find(
                "signal_count{record_type=\"_overflow\",vin=\"_overflow\"} 5010\n"),
            std::string::npos);
}

TEST(Metrics, OverflowCounterFamilyIsRegisteredFromTheStart) {
  MetricsRegistry reg;
  EXPECT_NE(reg.render_prometheus().find("# TYPE teslasync_metrics_label_overflow_total counter\n"),
            std::string::npos);
}

}  // namespace
}  // namespace ts::core
