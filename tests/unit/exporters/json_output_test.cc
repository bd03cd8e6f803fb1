#include "exporters/scheduler/json_output.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

namespace suanli::exporters {
namespace {

std::string Render(const std::function<void(json::Writer&)>& body) {
  rapidjson::StringBuffer out;
  json::Writer w(out);
  body(w);
  return json::Text(out);
}

TEST(JsonOutputTest, NonFiniteNumbersAreNull) {
  std::string text = Render([](json::Writer& w) {
    w.StartObject();
    json::NumberMember(w, "nan", NAN);
    json::NumberMember(w, "inf", std::numeric_limits<double>::infinity());
    json::NumberMember(w, "-inf", -std::numeric_limits<double>::infinity());
    json::IntMember(w, "int", -9007199254740993);
    w.EndObject();
  });
  EXPECT_EQ(text, R"({"nan":null,"inf":null,"-inf":null,"int":-9007199254740993})");
}

TEST(JsonOutputTest, NumbersReadBackAsTheSameDouble) {
  const double values[] = {0.1,
                           1e15,
                           -3,
                           0.30000757513828274,
                           515389603230832.3,
                           6.2528e18,
                           5e-324,
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::min(),
                           1.0 / 3,
                           -0.0};
  for (double v : values) {
    std::string text = Render([v](json::Writer& w) { json::Number(w, v); });
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
  }
}

TEST(JsonOutputTest, StringsReadBackTheSame) {
  const std::string value = "q\"b\\n\n\t\x01\x1f/ 中";
  std::string text = Render([&](json::Writer& w) {
    w.StartArray();
    json::String(w, value);
    w.EndArray();
  });
  auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc[0].get<std::string>(), value) << text;
  EXPECT_EQ(text.find('\x01'), std::string::npos) << text;  // control characters escaped
}

}  // namespace
}  // namespace suanli::exporters
