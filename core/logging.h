// Logging: spdlog's default logger, rendered as logfmt (`ts=... level=info msg="..."`) or JSON
// lines on stderr, as Prometheus' own servers do (--log.level, --log.format).
// Thread-safety: ConfigureLogging at start-up (or on reload) from one thread; the spdlog calls
// themselves are thread-safe.
#pragma once

#include <string_view>

#include "core/status.h"

namespace suanli {

// level: debug, info, warn, error. format: logfmt or json. Unknown names are an error.
Status ConfigureLogging(std::string_view level, std::string_view format);

}  // namespace suanli
