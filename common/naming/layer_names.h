// What a GPT-NeoX tensor name says about the matrix: its block and its kind.
//   gpt_neox.layers.3.attention.query_key_value.weight -> layer 3, "qkv"
//   gpt_neox.layers.3.attention.dense.weight           -> layer 3, "attn_out"
//   gpt_neox.layers.3.mlp.dense_h_to_4h.weight         -> layer 3, "mlp_in"
//   gpt_neox.layers.3.mlp.dense_4h_to_h.weight         -> layer 3, "mlp_out"
//   gpt_neox.embed_in.weight                           -> layer -1, "embed_in"
//   embed_out.weight                                   -> layer -1, "embed_out"
// Anything else keeps its block (or -1) with kind "other".
#ifndef GARDEN_COMMON_NAMING_LAYER_NAMES_H_
#define GARDEN_COMMON_NAMING_LAYER_NAMES_H_

#include <string>
#include <string_view>

namespace garden {

struct LayerName {
  int layer = -1;
  std::string kind;
};

LayerName ParseLayerName(std::string_view tensor);

}  // namespace garden

#endif  // GARDEN_COMMON_NAMING_LAYER_NAMES_H_
