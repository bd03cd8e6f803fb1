// WriteRequestEncoder: turns a sweep straight into a remote_write body (protobuf bytes of
// prompb.WriteRequest, snappy block format), without building libprotobuf objects or Labels:
// the sampling thread encodes every sweep, and building a message tree per sample cost more
// than reading the files.
//
// The bytes are exactly what libprotobuf writes for the same request (SweepToWriteRequest in
// agent.h, then remote::EncodeWriteRequest): field-number order, proto3 defaults left out
// (a 0 value, type UNKNOWN, empty strings), packed nothing (every field here is a scalar or a
// message). Per point the labels are __name__, the collector's labels without those whose name a
// static label takes or whose value is empty, then the static labels, sorted by name (stable);
// one sample at the sweep's timestamp. Then one MetricMetadata per family (type, name, help),
// but only in the first request, whenever the families (names, types, help) differ from those
// last sent, and at least every kMetadataIntervalMs of sweep time: as Prometheus' own
// remote_write (metadata_config.send_interval, 1m), since metadata changes with a new agent
// version, not between sweeps, and it was a fifth of every request.
//
// Wire format written (field number, wire type):
//   WriteRequest:   1 TimeSeries (len)*, 3 MetricMetadata (len)*
//   TimeSeries:     1 Label (len)*, 2 Sample (len)
//   Label:          1 name (len), 2 value (len)
//   Sample:         1 value (fixed64 double), 2 timestamp (varint int64)
//   MetricMetadata: 1 type (varint), 2 metric_family_name (len), 4 help (len)
// Series are pre-resolved: the encoder remembers, per position in the sweep, the family name
// and labels it saw there last time and the bytes they encoded to; a sweep shaped like the
// previous one (the steady state) costs a comparison and a copy per series, and only the sample
// is encoded anew. A sweep whose shape id (Sweep::shape_id) is one of the last two the encoder
// resolved (the agent alternates two recycled sweeps) skips even the comparisons, those of the
// metadata included: comparing names and label sets again was most of the sampling thread's
// memcmp time.
//
// Compression from a cached shape: snappy spent most of the encoding time finding, every sweep,
// the same matches between the same label bytes. Once a shape is resolved, the encoder writes
// each series' label bytes once as snappy elements (literals, and copies from the series' own
// label bytes or those of the 16 series before it), and a sweep without metadata is written
// straight into snappy's block format from that template: per series the header and the sample
// as a literal, the label elements with each copy's offset from where the source series lies in
// this request, the timestamp field as a copy of the previous series'. What it writes is a
// valid snappy block of exactly the protobuf bytes above (a decompressor gives them back); the
// compressed bytes differ from snappy::Compress's and are about 1.4x as many (values and
// repeats further back are left to snappy). Requests that carry metadata (once a minute) go
// through snappy::RawCompress.
// Thread-safety: not thread-safe; one encoder per sampling thread (it reuses its buffers).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/collector.h"
#include "core/status.h"

namespace suanli::agent {

// One remote_write body from several (snappy-compressed WriteRequests, in order), merged at the
// wire level without libprotobuf: series whose label fields are the same bytes are joined (their
// samples, and any other TimeSeries field, appended in order; labels written once), metadata
// kept once per family name (the first). Our encoder writes a label set always to the same
// bytes, so every series of a sweep matches its copy in the next one. `series` (optional)
// receives the number of series written. Fails with kInvalidArgument on a malformed body and
// kResourceExhausted when one would decompress to more than `max_decoded_bytes`.
Result<std::string> MergeWriteRequests(const std::vector<std::string_view>& bodies,
                                       size_t max_decoded_bytes, size_t* series = nullptr);

class WriteRequestEncoder {
 public:
  // `cached_shape`: write sweeps without metadata from the cached shape (above), else always
  // through snappy::RawCompress. The agent turns it on below kCachedShapeBelow of sampling
  // interval, where the CPU per sweep counts; at longer intervals snappy's smaller bodies do.
  explicit WriteRequestEncoder(const std::map<std::string, std::string>& static_labels,
                               bool cached_shape = true);

  static constexpr std::chrono::milliseconds kCachedShapeBelow{5000};

  static constexpr int64_t kMetadataIntervalMs = 60000;

  // The snappy-compressed body for `sweep` at `timestamp_ms`; `series` receives the number of
  // time series (one sample each).
  std::string Encode(const Sweep& sweep, int64_t timestamp_ms, uint32_t* series);

 private:
  // One label of the series being written: views into the sweep or the static labels.
  struct LabelRef {
    const std::string* name;
    const std::string* value;
  };
  // What series `index` of the previous sweep was, and its labels' bytes.
  struct Resolved {
    std::string metric_name;
    std::vector<Label> labels;  // the collector's, as given
    std::string label_bytes;    // the TimeSeries.labels fields, merged with the static labels
  };
  // The labels' bytes for `point` of family `metric_name`, from the memo when unchanged.
  const std::string& LabelBytes(size_t index, const std::string& metric_name, const Point& point);
  void EncodeLabels(const std::string& metric_name, const Point& point, std::string& out);
  void EncodeSeries(const std::string& label_bytes, double value, int64_t timestamp_ms);
  // The snappy elements of every resolved series' label bytes (template_ops_), rebuilt when
  // resolved_ changed since the last build.
  void BuildTemplate();
  // The compressed body of `sweep` (whose series resolved_ describes) without metadata, from
  // the template.
  std::string EncodeFromTemplate(const Sweep& sweep, int64_t timestamp_ms);

  const std::string name_label_ = "__name__";
  const bool cached_shape_;
  std::vector<Label> static_labels_;  // sorted by name
  std::vector<LabelRef> labels_;      // scratch: the labels of one series
  std::vector<Resolved> resolved_;    // by series position in the sweep
  size_t resolved_count_ = 0;         // series of the last shape resolved
  bool resolved_changed_ = false;     // LabelBytes re-encoded an entry (this Encode)
  // Sweep shape ids that resolved_ (its first resolved_count_ entries) and sent_families_
  // describe; 0: none.
  std::array<uint64_t, 2> known_shapes_{};
  // The families whose metadata was last sent, and when (sweep time).
  struct SentFamily {
    std::string name, help;
    MetricType type;
  };
  std::vector<SentFamily> sent_families_;
  int64_t metadata_sent_ms_ = 0;
  bool metadata_sent_ = false;
  // One snappy element of a series' label bytes: a literal of `len` of its bytes, or a copy
  // of `len` bytes (at most 64) of the label bytes of the series `back` places before it (0:
  // itself), from `from`. Copies are placed by their positions in each request, so a series'
  // sample size never matters.
  struct TemplateOp {
    uint32_t from;
    uint32_t len;
    uint32_t back;
    bool literal;
  };
  std::vector<TemplateOp> template_ops_;
  std::vector<uint32_t> template_begin_;  // per series, its first op; then the end
  // resolved_'s generation: bumped whenever an entry or the count changes; the template's.
  uint64_t resolved_generation_ = 1;
  uint64_t template_generation_ = 0;
  std::string template_out_;  // scratch: the block written from the template, worst-case size
  std::vector<size_t> label_positions_;  // scratch: where each series' label bytes start
  std::string raw_;                      // scratch: the uncompressed request
  std::string compressed_;               // scratch: snappy's output, sized for the worst case
};

}  // namespace suanli::agent
