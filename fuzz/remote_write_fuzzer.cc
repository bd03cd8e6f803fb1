// libFuzzer target: the remote_write request decoders (snappy + protobuf). The zero-copy
// parser the aggregator runs on every POST /api/v1/write body must agree with libprotobuf's
// (DecodeWriteRequest, the reference) on acceptance and content; then label validation and a
// re-encode round trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/remote_codec.h"
#include "core/remote_write_fast_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  // The aggregator's default is 64 MiB; 1 MiB keeps each run fast and still exercises the
  // size check (a snappy header may claim far more).
  auto decoded = suanli::remote::DecodeWriteRequest(body, 1 << 20);
  suanli::remote::DecodedWriteRequest fast;
  suanli::Status fast_status = suanli::remote::DecodeWriteRequestView(body, 1 << 20, &fast);
  if (decoded.ok() != fast_status.ok()) __builtin_trap();
  if (!decoded.ok()) return 0;
  const suanli::remote::WriteRequestView& view = fast.view;
  if (view.series.size() != decoded->series.size()) __builtin_trap();
  for (size_t i = 0; i < view.series.size(); ++i) {
    std::vector<suanli::Label> items;
    for (const auto& l : view.LabelsOf(view.series[i])) {
      items.push_back({std::string(l.name), std::string(l.value)});
    }
    auto samples = view.SamplesOf(view.series[i]);
    if (suanli::Labels(std::move(items)) != decoded->series[i].labels ||
        std::vector<suanli::Sample>(samples.begin(), samples.end()) != decoded->series[i].samples) {
      __builtin_trap();
    }
  }
  size_t samples = 0;
  for (const auto& ts : decoded->series) {
    ts.labels.Validate().IgnoreError();
    (void)ts.labels.Hash();
    samples += ts.samples.size();
  }
  // What decodes must encode and decode again to the same shape.
  std::string again = suanli::remote::EncodeWriteRequest(*decoded);
  auto round = suanli::remote::DecodeWriteRequest(again, 64 << 20);
  if (!round.ok() || round->series.size() != decoded->series.size()) __builtin_trap();
  size_t round_samples = 0;
  for (const auto& ts : round->series) round_samples += ts.samples.size();
  if (round_samples != samples) __builtin_trap();
  return 0;
}
