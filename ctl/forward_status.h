// `suanlictl forward status`: the state of each `forward:` target of a running aggregator, read
// from its self-metrics on /metrics (suanli_aggregator_forward_*, docs/metrics.md): samples sent,
// retried and dropped, requests by answer class, the backlog's age, whether the target is held
// (401, 403, 404 or 3xx) and when it last accepted a request.
// Thread-safety: pure functions, and one Run call at a time.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/status.h"
#include "ctl/aggregator_client.h"

namespace suanli::ctl {

// One sample of the Prometheus text format.
struct TextSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
// The samples of a text exposition (comments and blank lines skipped, label escapes decoded);
// InvalidArgument naming the line for one that does not parse.
Result<std::vector<TextSample>> ParseTextExposition(const std::string& text);

// The table of every target found in the samples; "no forward targets" when there is none.
// now_seconds: Unix time, for the age of the last success.
std::string RenderForwardStatus(const std::vector<TextSample>& samples, double now_seconds);

int RunForwardStatus(AggregatorClient& client, std::ostream& out, std::ostream& err);

}  // namespace suanli::ctl
