#include "core/remote_write_response.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

namespace suanli::remote {

WriteVerdict ClassifyWriteStatus(int s) {
  if (s >= 200 && s < 300) return {WriteOutcome::kAccepted, ""};
  if (s == 429 || s == 408 || (s >= 500 && s < 600)) return {WriteOutcome::kRetry, ""};
  switch (s) {
    case 413:
      return {WriteOutcome::kSplit, "too_large"};
    case 400:
      return {WriteOutcome::kDrop, "bad_request"};
    case 409:
      return {WriteOutcome::kDrop, "conflict"};
    case 415:
      return {WriteOutcome::kDrop, "unsupported_media_type"};
    case 422:
      return {WriteOutcome::kDrop, "unprocessable"};
    case 401:
    case 403:
    case 404:
      return {WriteOutcome::kHold, ""};
    default:
      break;
  }
  if (s >= 400 && s < 500) return {WriteOutcome::kDrop, "other_4xx"};
  return {WriteOutcome::kHold, ""};  // 3xx, 1xx and nonsense: never lose data on them
}

const char* StatusClass(int s) {
  if (s <= 0) return "network";
  if (s < 200) return "1xx";
  if (s < 300) return "2xx";
  if (s < 400) return "3xx";
  if (s < 500) return "4xx";
  return "5xx";
}

namespace {

int MonthIndex(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (kMonths[i] == m) return i;
  }
  return -1;
}

bool ParseInt(std::string_view s, int* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// IMF-fixdate, the form RFC 9110 requires senders to use: "Sun, 06 Nov 1994 08:49:37 GMT".
bool ParseHttpDate(std::string_view v, std::chrono::system_clock::time_point* out) {
  if (v.size() != 29 || v[3] != ',' || v.substr(25) != " GMT") return false;
  int day, year, hour, min, sec;
  int month = MonthIndex(v.substr(8, 3));
  if (month < 0 || !ParseInt(v.substr(5, 2), &day) || !ParseInt(v.substr(12, 4), &year) ||
      !ParseInt(v.substr(17, 2), &hour) || !ParseInt(v.substr(20, 2), &min) ||
      !ParseInt(v.substr(23, 2), &sec) || v[19] != ':' || v[22] != ':') {
    return false;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return false;
  *out = std::chrono::system_clock::from_time_t(t);
  return true;
}

}  // namespace

std::chrono::milliseconds ParseRetryAfter(std::string_view value,
                                          std::chrono::system_clock::time_point now,
                                          std::chrono::milliseconds cap) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::chrono::milliseconds(0);
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    int64_t secs = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) return cap;
    if (ec != std::errc() || p != value.data() + value.size()) return std::chrono::milliseconds(0);
    if (secs > cap.count() / 1000) return cap;
    return std::chrono::milliseconds(secs * 1000);
  }
  std::chrono::system_clock::time_point when;
  if (!ParseHttpDate(value, &when) || when <= now) return std::chrono::milliseconds(0);
  return std::min(cap, std::chrono::duration_cast<std::chrono::milliseconds>(when - now));
}

std::string ReceiverMessage(std::string_view body) {
  size_t nl = body.find('\n');
  if (nl != std::string_view::npos) body = body.substr(0, nl);
  while (!body.empty() && (body.back() == ' ' || body.back() == '\r')) body.remove_suffix(1);
  std::string out(body.substr(0, 200));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (body.size() > 200) out += "...";
  return out;
}

std::chrono::milliseconds Backoff::Next(std::chrono::milliseconds retry_after, double random01) {
  current_ = current_.count() == 0 ? min_ : std::min(current_ * 2, max_);
  current_ = std::max(current_, min_);
  auto half = current_.count() / 2;
  auto jittered = std::chrono::milliseconds(
      half + static_cast<int64_t>(random01 * static_cast<double>(current_.count() - half)));
  return std::max(jittered, retry_after);
}

}  // namespace suanli::remote
