// libFuzzer target: the remote_read request decoder (what POST /api/v1/read receives) and the
// response decoder (what a client of a remote_read endpoint receives).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/remote_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto request = suanli::remote::DecodeReadRequest(body, 1 << 20);
  if (request.ok()) {
    std::string again = suanli::remote::EncodeReadRequest(*request);
    auto round = suanli::remote::DecodeReadRequest(again, 64 << 20);
    if (!round.ok() || round->queries.size() != request->queries.size()) __builtin_trap();
  }
  auto response = suanli::remote::DecodeReadResponse(body, 1 << 20);
  if (response.ok()) {
    std::string again = suanli::remote::EncodeReadResponse(*response);
    auto round = suanli::remote::DecodeReadResponse(again, 64 << 20);
    if (!round.ok() || round->size() != response->size()) __builtin_trap();
  }
  return 0;
}
