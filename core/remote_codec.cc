// Prometheus remote_write / remote_read codec: snappy block format over prompb messages.

#include "core/remote_codec.h"

#include <snappy.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>
#include <utility>

#include "remote.pb.h"

namespace suanli::remote {
namespace {

// ---- snappy + protobuf framing ----

// Serializes `message` and compresses it in snappy's block format (not the framed format).
std::string SerializeAndCompress(const google::protobuf::MessageLite& message) {
  std::string raw;
  message.SerializeToString(&raw);
  std::string body;
  snappy::Compress(raw.data(), raw.size(), &body);
  return body;
}

// Decompresses `body` and parses it into a `Msg` allocated on `arena` (arena parsing is about
// twice as fast as heap parsing for remote_write's many small messages). The declared length is
// checked against the limit before anything is allocated, so a tiny body cannot make us
// allocate gigabytes.
template <typename Msg>
Result<Msg*> DecompressAndParse(std::string_view body, size_t max_decoded_bytes,
                                const char* type_name, google::protobuf::Arena* arena) {
  std::unique_ptr<char[]> decoded;
  size_t decoded_size = 0;
  RETURN_IF_ERROR(SnappyDecompress(body, max_decoded_bytes, &decoded, &decoded_size));
  Msg* message = google::protobuf::Arena::CreateMessage<Msg>(arena);
  if (!message->ParseFromArray(decoded.get(), static_cast<int>(decoded_size))) {
    return InvalidArgument(std::string("protobuf: cannot parse ") + type_name);
  }
  return message;
}

// Parsed messages take a little more memory than their wire form; growing blocks up to 1 MiB
// keeps the number of arena blocks small for large requests.
google::protobuf::ArenaOptions DecodeArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 4096;
  options.max_block_size = 1 << 20;
  return options;
}

// ---- messages -> our types (moving strings out of the parsed message) ----

Labels TakeLabels(google::protobuf::RepeatedPtrField<prompb::Label>* in) {
  std::vector<Label> labels;
  labels.reserve(in->size());
  for (prompb::Label& l : *in) {
    labels.push_back(Label{std::move(*l.mutable_name()), std::move(*l.mutable_value())});
  }
  return Labels(std::move(labels));  // sorts by name
}

TimeSeries TakeSeries(prompb::TimeSeries* in) {
  TimeSeries out;
  out.labels = TakeLabels(in->mutable_labels());
  out.samples.reserve(in->samples_size());
  for (const prompb::Sample& s : in->samples()) {
    // Doubles travel as fixed64 bit patterns: NaN payloads (the stale marker) survive as is.
    out.samples.push_back(Sample{s.timestamp(), s.value()});
  }
  return out;
}

std::vector<TimeSeries> TakeSeriesList(google::protobuf::RepeatedPtrField<prompb::TimeSeries>* in) {
  std::vector<TimeSeries> out;
  out.reserve(in->size());
  for (prompb::TimeSeries& ts : *in) out.push_back(TakeSeries(&ts));
  return out;
}

MetricType ToMetricType(int type) {
  // Unknown future types degrade to "unknown" (metadata is advisory).
  if (type < 0 || type > static_cast<int>(MetricType::kStateset)) return MetricType::kUnknown;
  return static_cast<MetricType>(type);
}

// ---- our types -> messages ----

void FillSeries(const TimeSeries& in, prompb::TimeSeries* out) {
  out->mutable_labels()->Reserve(static_cast<int>(in.labels.size()));
  for (const Label& l : in.labels.items()) {
    prompb::Label* pl = out->add_labels();
    pl->set_name(l.name);
    pl->set_value(l.value);
  }
  out->mutable_samples()->Reserve(static_cast<int>(in.samples.size()));
  for (const Sample& s : in.samples) {
    prompb::Sample* ps = out->add_samples();
    ps->set_value(s.value);
    ps->set_timestamp(s.timestamp_ms);
  }
}

void FillSeriesList(const std::vector<TimeSeries>& in,
                    google::protobuf::RepeatedPtrField<prompb::TimeSeries>* out) {
  out->Reserve(static_cast<int>(in.size()));
  for (const TimeSeries& ts : in) FillSeries(ts, out->Add());
}

}  // namespace

// The declared length is checked against the limit before anything is allocated, so a tiny
// body cannot make us allocate gigabytes.
Status SnappyDecompress(std::string_view body, size_t max_decoded_bytes,
                        std::unique_ptr<char[]>* out, size_t* size, size_t* capacity) {
  // Go's snappy (Prometheus) rejects a zero-byte body too; an empty request is "\0".
  if (body.empty()) return InvalidArgument("snappy: empty body");
  size_t decoded_size = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &decoded_size)) {
    return InvalidArgument("snappy: corrupt input");
  }
  // libprotobuf takes the length as an int.
  const size_t limit = std::min<size_t>(max_decoded_bytes, INT_MAX);
  if (decoded_size > limit) {
    return ResourceExhausted("decompressed body of " + std::to_string(decoded_size) +
                             " bytes exceeds the limit of " + std::to_string(limit) + " bytes");
  }
  // RawUncompress bounds-checks every copy and checks that exactly `decoded_size` bytes come
  // out, so a separate IsValidCompressedBuffer pass would only decode everything twice.
  // make_unique_for_overwrite: no zero-fill of a buffer that is overwritten at once.
  if (capacity == nullptr || *out == nullptr || *capacity < decoded_size) {
    *out = std::make_unique_for_overwrite<char[]>(decoded_size);
    if (capacity != nullptr) *capacity = decoded_size;
  }
  *size = 0;
  if (!snappy::RawUncompress(body.data(), body.size(), out->get())) {
    return InvalidArgument("snappy: corrupt input");
  }
  *size = decoded_size;
  return Status::Ok();
}

// ---- remote_write ----

std::string EncodeWriteRequest(const WriteRequest& request) {
  prompb::WriteRequest msg;
  FillSeriesList(request.series, msg.mutable_timeseries());
  msg.mutable_metadata()->Reserve(static_cast<int>(request.metadata.size()));
  for (const MetricMetadata& m : request.metadata) {
    prompb::MetricMetadata* pm = msg.add_metadata();
    pm->set_type(static_cast<prompb::MetricMetadata::MetricType>(m.type));
    pm->set_metric_family_name(m.metric_family_name);
    pm->set_help(m.help);
    pm->set_unit(m.unit);
  }
  return SerializeAndCompress(msg);
}

Result<WriteRequest> DecodeWriteRequest(std::string_view body, size_t max_decoded_bytes) {
  google::protobuf::Arena arena(DecodeArenaOptions());
  ASSIGN_OR_RETURN(
      prompb::WriteRequest * parsed,
      DecompressAndParse<prompb::WriteRequest>(body, max_decoded_bytes, "WriteRequest", &arena));
  prompb::WriteRequest& msg = *parsed;
  WriteRequest out;
  out.series = TakeSeriesList(msg.mutable_timeseries());
  out.metadata.reserve(msg.metadata_size());
  for (prompb::MetricMetadata& m : *msg.mutable_metadata()) {
    out.metadata.push_back(
        MetricMetadata{ToMetricType(m.type()), std::move(*m.mutable_metric_family_name()),
                       std::move(*m.mutable_help()), std::move(*m.mutable_unit())});
  }
  return out;
}

// ---- remote_read ----

Result<ReadRequest> DecodeReadRequest(std::string_view body, size_t max_decoded_bytes) {
  google::protobuf::Arena arena(DecodeArenaOptions());
  ASSIGN_OR_RETURN(
      prompb::ReadRequest * parsed,
      DecompressAndParse<prompb::ReadRequest>(body, max_decoded_bytes, "ReadRequest", &arena));
  prompb::ReadRequest& msg = *parsed;
  ReadRequest out;
  for (int type : msg.accepted_response_types()) {
    if (type == prompb::ReadRequest::STREAMED_XOR_CHUNKS) out.accepts_streamed_chunks = true;
  }
  out.queries.reserve(msg.queries_size());
  for (prompb::Query& q : *msg.mutable_queries()) {
    ReadQuery& rq = out.queries.emplace_back();
    rq.start_ms = q.start_timestamp_ms();
    rq.end_ms = q.end_timestamp_ms();
    rq.matchers.reserve(q.matchers_size());
    for (prompb::LabelMatcher& m : *q.mutable_matchers()) {
      // Reading an unknown matcher type as another type would return wrong data: refuse.
      if (m.type() < prompb::LabelMatcher::EQ || m.type() > prompb::LabelMatcher::NRE) {
        return InvalidArgument("protobuf: unknown label matcher type " + std::to_string(m.type()));
      }
      rq.matchers.push_back(LabelMatcher{static_cast<LabelMatcher::Type>(m.type()),
                                         std::move(*m.mutable_name()),
                                         std::move(*m.mutable_value())});
    }
    rq.has_hints = q.has_hints();
    if (rq.has_hints) {
      prompb::ReadHints* h = q.mutable_hints();
      rq.hints.step_ms = h->step_ms();
      rq.hints.func = std::move(*h->mutable_func());
      rq.hints.start_ms = h->start_ms();
      rq.hints.end_ms = h->end_ms();
      rq.hints.grouping.reserve(h->grouping_size());
      for (std::string& g : *h->mutable_grouping()) rq.hints.grouping.push_back(std::move(g));
      rq.hints.by = h->by();
      rq.hints.range_ms = h->range_ms();
    }
  }
  return out;
}

std::string EncodeReadRequest(const ReadRequest& request) {
  prompb::ReadRequest msg;
  msg.mutable_queries()->Reserve(static_cast<int>(request.queries.size()));
  for (const ReadQuery& rq : request.queries) {
    prompb::Query* q = msg.add_queries();
    q->set_start_timestamp_ms(rq.start_ms);
    q->set_end_timestamp_ms(rq.end_ms);
    for (const LabelMatcher& m : rq.matchers) {
      prompb::LabelMatcher* pm = q->add_matchers();
      pm->set_type(static_cast<prompb::LabelMatcher::Type>(m.type));
      pm->set_name(m.name);
      pm->set_value(m.value);
    }
    if (rq.has_hints) {
      prompb::ReadHints* h = q->mutable_hints();
      h->set_step_ms(rq.hints.step_ms);
      h->set_func(rq.hints.func);
      h->set_start_ms(rq.hints.start_ms);
      h->set_end_ms(rq.hints.end_ms);
      for (const std::string& g : rq.hints.grouping) h->add_grouping(g);
      h->set_by(rq.hints.by);
      h->set_range_ms(rq.hints.range_ms);
    }
  }
  // Preference order, as Prometheus sends it; SAMPLES is what every server implements.
  if (request.accepts_streamed_chunks) {
    msg.add_accepted_response_types(prompb::ReadRequest::STREAMED_XOR_CHUNKS);
  }
  msg.add_accepted_response_types(prompb::ReadRequest::SAMPLES);
  return SerializeAndCompress(msg);
}

std::string EncodeReadResponse(const std::vector<std::vector<TimeSeries>>& results) {
  prompb::ReadResponse msg;
  msg.mutable_results()->Reserve(static_cast<int>(results.size()));
  for (const std::vector<TimeSeries>& series : results) {
    FillSeriesList(series, msg.add_results()->mutable_timeseries());
  }
  return SerializeAndCompress(msg);
}

Result<std::vector<std::vector<TimeSeries>>> DecodeReadResponse(std::string_view body,
                                                                size_t max_decoded_bytes) {
  google::protobuf::Arena arena(DecodeArenaOptions());
  ASSIGN_OR_RETURN(
      prompb::ReadResponse * parsed,
      DecompressAndParse<prompb::ReadResponse>(body, max_decoded_bytes, "ReadResponse", &arena));
  prompb::ReadResponse& msg = *parsed;
  std::vector<std::vector<TimeSeries>> out;
  out.reserve(msg.results_size());
  for (prompb::QueryResult& r : *msg.mutable_results()) {
    out.push_back(TakeSeriesList(r.mutable_timeseries()));
  }
  return out;
}

}  // namespace suanli::remote
