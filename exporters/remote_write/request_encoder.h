// The forwarder's remote_write bodies, encoded by hand (protobuf wire format of prompb's
// WriteRequest, then snappy): each series' labels are encoded once, when the forwarder first
// meets the series, and shared by every request that carries it. Building protobuf messages
// per request cost a copy and an allocation per label and sample, several times the
// aggregator's own ingest cost per sample.
// Thread-safety: EncodedSeries values are immutable once built and may be shared.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/labels.h"
#include "core/sample.h"

namespace suanli::exporters {

struct EncodedSeries {
  // prompb TimeSeries.labels (repeated field 1) as wire bytes, and a hash of the label set
  // (which shard the series goes to).
  std::shared_ptr<const std::string> labels;
  uint64_t hash = 0;
  std::vector<Sample> samples;  // time order
};

// The labels of `labels` (sorted, as Labels keeps them) as TimeSeries.labels wire bytes.
std::string EncodeLabels(const Labels& labels);
EncodedSeries Encode(const TimeSeries& ts);

// The HTTP body: WriteRequest{timeseries} in protobuf, snappy block format.
std::string EncodeWriteBody(const std::vector<EncodedSeries>& series);

size_t SampleCount(const std::vector<EncodedSeries>& series);

}  // namespace suanli::exporters
