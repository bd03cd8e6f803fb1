#include "core/status.h"

#include <gtest/gtest.h>

namespace suanli {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd: " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

Status Check(int v) {
  RETURN_IF_ERROR(Quarter(v).status().ok() ? Status::Ok() : Quarter(v).status());
  return Status::Ok();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
  Status s = NotFound("x.yml: no such file");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: x.yml: no such file");
  EXPECT_EQ(s.WithContext("--config.file").message(), "--config.file: x.yml: no such file");
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(StatusTest, ResultPropagation) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_TRUE(Check(4).ok());
  EXPECT_EQ(Check(2).message(), "odd: 1");
}

}  // namespace
}  // namespace suanli
