// A zero-copy parser of the remote_write 1.0 WriteRequest (prompb, core/proto/remote.proto):
// label names and values become views into the decompressed body instead of strings, samples
// land in one flat array, so a request of N series costs a few vector growths, not ~3N
// allocations as with libprotobuf plus our Labels. The aggregator's ingest path uses it;
// DecodeWriteRequest (libprotobuf) stays the reference, and a differential test and the
// remote_write fuzzer hold the two to the same answers.
//
// Wire rules followed as libprotobuf 3.21 does: unknown fields (and known fields with another
// wire type) are skipped, groups included; a repeated scalar field keeps its last value; tag 0,
// field number 0, wire types 6/7, an unmatched end-group, truncated varints, fixed fields or
// lengths are errors; a sub-message must end exactly at its length. Exemplars and metadata are
// checked for well-formedness and otherwise ignored (the aggregator stores neither); native
// histograms (prompb TimeSeries field 4) are skipped. Both are counted, so that a receiver can
// say what it dropped.
// Labels are returned in wire order, not sorted, and not validated (see Labels::Validate).
// Thread-safety: free functions over caller-owned values.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/sample.h"
#include "core/status.h"

namespace suanli::remote {

struct LabelRef {
  std::string_view name;
  std::string_view value;
};

// One TimeSeries: ranges of WriteRequestView::labels and ::samples.
struct SeriesRef {
  uint32_t first_label = 0;
  uint32_t label_count = 0;
  uint32_t first_sample = 0;
  uint32_t sample_count = 0;
};

struct WriteRequestView {
  std::vector<LabelRef> labels;
  std::vector<Sample> samples;  // bit-exact values (NaN payloads, stale markers)
  std::vector<SeriesRef> series;
  size_t metadata_count = 0;
  size_t exemplar_count = 0;   // TimeSeries.exemplars (field 3), not kept
  size_t histogram_count = 0;  // TimeSeries.histograms (field 4, native histograms), not kept

  std::span<const LabelRef> LabelsOf(const SeriesRef& s) const {
    return {labels.data() + s.first_label, s.label_count};
  }
  std::span<const Sample> SamplesOf(const SeriesRef& s) const {
    return {samples.data() + s.first_sample, s.sample_count};
  }
  void Clear() {
    labels.clear();
    samples.clear();
    series.clear();
    metadata_count = 0;
    exemplar_count = 0;
    histogram_count = 0;
  }
};

// Parses an uncompressed WriteRequest. The views in *out point into `raw`, which must outlive
// them. InvalidArgument ("protobuf: ...") on malformed input; *out is then unspecified.
Status ParseWriteRequestView(std::string_view raw, WriteRequestView* out);

// A decompressed body and the views into it. Decoding into the same object again reuses its
// buffer and vectors (a receiver keeps one per thread); ReleaseIfAbove bounds what is kept.
struct DecodedWriteRequest {
  std::unique_ptr<char[]> buffer;
  size_t size = 0;
  size_t capacity = 0;  // of buffer
  WriteRequestView view;

  // Frees the buffers when the body took more than `max_bytes` (one outsized request does
  // not pin its memory for the life of the thread).
  void ReleaseIfAbove(size_t max_bytes) {
    if (capacity <= max_bytes) return;
    *this = DecodedWriteRequest{};
  }
};

// Snappy-decompresses `body` (block format) and parses it, with DecodeWriteRequest's limits
// and errors: kResourceExhausted when the decompressed size would exceed `max_decoded_bytes`
// (checked before allocating), kInvalidArgument for bad snappy or protobuf.
Status DecodeWriteRequestView(std::string_view body, size_t max_decoded_bytes,
                              DecodedWriteRequest* out);

}  // namespace suanli::remote
