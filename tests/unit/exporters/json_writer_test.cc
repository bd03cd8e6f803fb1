#include "exporters/scheduler/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace suanli::exporters {
namespace {

TEST(JsonWriterTest, NestingAndCommas) {
  JsonWriter w;
  w.BeginObject().Key("a").Int(1).Key("b").BeginArray().Number(0.5).Bool(true).Null();
  w.BeginObject().EndObject().BeginArray().EndArray().EndArray();
  w.Key("c").String("x").EndObject();
  EXPECT_EQ(w.str(), R"({"a":1,"b":[0.5,true,null,{},[]],"c":"x"})");
}

TEST(JsonWriterTest, EscapesStrings) {
  JsonWriter w;
  w.BeginArray().String("q\"b\\n\n\t\x01 中").EndArray();
  EXPECT_EQ(w.str(), "[\"q\\\"b\\\\n\\n\\t\\u0001 中\"]");
}

TEST(JsonWriterTest, NumbersRoundTripAndNonFiniteIsNull) {
  JsonWriter w;
  w.BeginArray().Number(1e15).Number(0.1).Number(-3).Number(NAN);
  w.Number(std::numeric_limits<double>::infinity()).Int(-9007199254740993).EndArray();
  EXPECT_EQ(w.str(), "[1e+15,0.1,-3,null,null,-9007199254740993]");
}

}  // namespace
}  // namespace suanli::exporters
