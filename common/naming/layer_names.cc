#include "common/naming/layer_names.h"

#include "absl/strings/numbers.h"
#include "common/base/absl_compat.h"

namespace garden {

LayerName ParseLayerName(std::string_view tensor) {
  LayerName out;
  constexpr std::string_view kLayers = "layers.";
  if (const size_t at = tensor.find(kLayers); at != std::string_view::npos) {
    const size_t begin = at + kLayers.size();
    const size_t end = tensor.find('.', begin);
    int layer = -1;
    if (end != std::string_view::npos &&
        absl::SimpleAtoi(ToAbsl(tensor.substr(begin, end - begin)), &layer) && layer >= 0) {
      out.layer = layer;
    }
  }
  const auto has = [&](std::string_view part) {
    return tensor.find(part) != std::string_view::npos;
  };
  if (has("query_key_value")) {
    out.kind = "qkv";
  } else if (has("attention.dense")) {
    out.kind = "attn_out";
  } else if (has("dense_h_to_4h")) {
    out.kind = "mlp_in";
  } else if (has("dense_4h_to_h")) {
    out.kind = "mlp_out";
  } else if (has("embed_in")) {
    out.kind = "embed_in";
  } else if (has("embed_out")) {
    out.kind = "embed_out";
  } else {
    out.kind = "other";
  }
  return out;
}

}  // namespace garden
