// libFuzzer target: the remote_write request decoder (snappy + protobuf), as the aggregator
// runs it on every POST /api/v1/write body, then label validation and a re-encode round trip.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/remote_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  // The aggregator's default is 64 MiB; 1 MiB keeps each run fast and still exercises the
  // size check (a snappy header may claim far more).
  auto decoded = suanli::remote::DecodeWriteRequest(body, 1 << 20);
  if (!decoded.ok()) return 0;
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
