#include "core/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>

namespace suanli {
namespace {

void AppendTimestamp(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  auto t = std::chrono::system_clock::to_time_t(msg.time);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() %
      1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  n += std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  dest.append(buf, buf + n);
}

std::string_view LevelName(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return "debug";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "error";
    default:
      return "info";
  }
}

void AppendEscaped(std::string_view s, spdlog::memory_buf_t& dest, bool json) {
  for (char c : s) {
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      default:
        if (json && static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          dest.append(buf, buf + 6);
        } else {
          dest.push_back(c);
        }
    }
  }
}

// Renders one record as logfmt or JSON. The message text may itself carry `key=value` pairs
// after the human-readable part; they stay inside msg so that no parsing is guessed.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    if (json_) {
      dest.append(std::string_view("{\"ts\":\""));
      AppendTimestamp(msg, dest);
      dest.append(std::string_view("\",\"level\":\""));
      dest.append(LevelName(msg.level));
      dest.append(std::string_view("\",\"msg\":\""));
      AppendEscaped(text, dest, true);
      dest.append(std::string_view("\"}\n"));
    } else {
      dest.append(std::string_view("ts="));
      AppendTimestamp(msg, dest);
      dest.append(std::string_view(" level="));
      dest.append(LevelName(msg.level));
      dest.append(std::string_view(" msg=\""));
      AppendEscaped(text, dest, false);
      dest.append(std::string_view("\"\n"));
    }
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(json_);
  }

 private:
  bool json_;
};

}  // namespace

Status ConfigureLogging(std::string_view level, std::string_view format) {
  spdlog::level::level_enum lvl;
  if (level == "debug") {
    lvl = spdlog::level::debug;
  } else if (level == "info") {
    lvl = spdlog::level::info;
  } else if (level == "warn") {
    lvl = spdlog::level::warn;
  } else if (level == "error") {
    lvl = spdlog::level::err;
  } else {
    return InvalidArgument("--log.level: unknown level \"" + std::string(level) +
                           "\" (use debug, info, warn or error)");
  }
  bool json;
  if (format == "logfmt") {
    json = false;
  } else if (format == "json") {
    json = true;
  } else {
    return InvalidArgument("--log.format: unknown format \"" + std::string(format) +
                           "\" (use logfmt or json)");
  }
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("suanli", sink);
    spdlog::set_default_logger(l);
    return l;
  }();
  logger->set_formatter(std::make_unique<LineFormatter>(json));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);  // logs are read by tests and by journald live
  return Status::Ok();
}

}  // namespace suanli
