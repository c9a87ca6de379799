#include "core/metrics.hpp"

#include <gtest/gtest.h>

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
