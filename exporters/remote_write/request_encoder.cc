#include "exporters/remote_write/request_encoder.h"

#include <snappy.h>

#include <cstring>

#include "core/varint.h"

namespace suanli::exporters {
namespace {

void PutBytesField(std::string* out, uint32_t field, std::string_view bytes) {
  PutVarint(*out, field << 3 | 2);
  PutVarint(*out, bytes.size());
  out->append(bytes);
}

// Sample{value = 1 (double), timestamp = 2 (int64 varint)}.
size_t SampleSize(const Sample& s) {
  return 1 + 8 + 1 + VarintSize(static_cast<uint64_t>(s.timestamp_ms));
}

}  // namespace

std::string EncodeLabels(const Labels& labels) {
  std::string out;
  for (const Label& l : labels.items()) {
    const size_t body = 1 + VarintSize(l.name.size()) + l.name.size() + 1 +
                        VarintSize(l.value.size()) + l.value.size();
    PutVarint(out, 1 << 3 | 2);
    PutVarint(out, body);
    PutBytesField(&out, 1, l.name);
    PutBytesField(&out, 2, l.value);
  }
  return out;
}

EncodedSeries Encode(const TimeSeries& ts) {
  return {std::make_shared<const std::string>(EncodeLabels(ts.labels)), ts.labels.Hash(),
          ts.samples};
}

size_t SampleCount(const std::vector<EncodedSeries>& series) {
  size_t n = 0;
  for (const EncodedSeries& s : series) n += s.samples.size();
  return n;
}

std::string EncodeWriteBody(const std::vector<EncodedSeries>& series) {
  std::string raw;
  size_t total = 0;
  for (const EncodedSeries& s : series) total += s.labels->size() + 20 + s.samples.size() * 22;
  raw.reserve(total);
  for (const EncodedSeries& s : series) {
    size_t body = s.labels->size();
    for (const Sample& x : s.samples) body += 1 + VarintSize(SampleSize(x)) + SampleSize(x);
    PutVarint(raw, 1 << 3 | 2);  // WriteRequest.timeseries
    PutVarint(raw, body);
    raw.append(*s.labels);
    for (const Sample& x : s.samples) {
      PutVarint(raw, 2 << 3 | 2);  // TimeSeries.samples
      PutVarint(raw, SampleSize(x));
      raw.push_back(static_cast<char>(1 << 3 | 1));  // value: fixed64 double
      char bits[8];
      std::memcpy(bits, &x.value, 8);  // little-endian hosts (static_assert in core/spool)
      raw.append(bits, 8);
      raw.push_back(static_cast<char>(2 << 3 | 0));  // timestamp: varint
      PutVarint(raw, static_cast<uint64_t>(x.timestamp_ms));
    }
  }
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

}  // namespace suanli::exporters
