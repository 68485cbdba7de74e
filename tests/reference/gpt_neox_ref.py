"""An independent, small PyTorch GPT-NeoX (Pythia) for checking Garden's C++ model.

It follows the semantics of Hugging Face transformers' GPTNeoXForCausalLM in
inference mode, written out op by op so that it depends on nothing but torch:

  * query_key_value output viewed as [batch, seq, heads, 3 * head_dim], each
    head's chunk split into q, k, v;
  * rotary embeddings on the first int(head_dim * rotary_pct) dimensions,
    inv_freq = 1 / base ** (arange(0, rot, 2) / rot) in float32, cos/sin of
    cat(freqs, freqs), x * cos + rotate_half(x) * sin where
    rotate_half(x) = cat(-x[..., rot/2:], x[..., :rot/2]);
  * causal softmax(q k^T / sqrt(head_dim)) in float32;
  * parallel residual  h + attn(ln1(h)) + mlp(ln2(h)),
    or sequential      m = h + attn(ln1(h)); m + mlp(ln2(m));
  * final layer norm, untied embed_out without bias.

Also: random tiny configurations and weights, and a hand-written safetensors
writer, to make checkpoint directories the C++ side can load.
"""

import collections
import json
import math
import os
import struct

import torch

# ---------------------------------------------------------------- configs ---


def make_config(hidden_size, num_attention_heads, num_hidden_layers,
                intermediate_size, vocab_size, rotary_pct=0.25,
                use_parallel_residual=True, hidden_act="gelu",
                max_position_embeddings=64, rotary_emb_base=10000,
                layer_norm_eps=1e-5):
    """A config.json dictionary as transformers writes it for GPT-NeoX."""
    head_dim = hidden_size // num_attention_heads
    assert head_dim * num_attention_heads == hidden_size
    assert int(head_dim * rotary_pct) % 2 == 0, "rotary dims must be even"
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "hidden_size": hidden_size,
        "num_attention_heads": num_attention_heads,
        "num_hidden_layers": num_hidden_layers,
        "intermediate_size": intermediate_size,
        "vocab_size": vocab_size,
        "rotary_pct": rotary_pct,
        "rotary_emb_base": rotary_emb_base,
        "max_position_embeddings": max_position_embeddings,
        "layer_norm_eps": layer_norm_eps,
        "use_parallel_residual": use_parallel_residual,
        "hidden_act": hidden_act,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float16",
    }


def random_weights(config, seed, extra_buffers=True):
    """Random float32 weights by Hugging Face name.

    Scaled so that activations stay O(1) and logits spread over several units:
    greedy decoding then has no near-ties that float rounding could flip.
    """
    g = torch.Generator().manual_seed(seed)
    h = config["hidden_size"]
    ff = config["intermediate_size"]
    v = config["vocab_size"]

    def normal(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    w = {"gpt_neox.embed_in.weight": normal(v, h)}
    for i in range(config["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        w[p + "input_layernorm.weight"] = normal(h, std=0.1, mean=1.0)
        w[p + "input_layernorm.bias"] = normal(h, std=0.1)
        w[p + "post_attention_layernorm.weight"] = normal(h, std=0.1, mean=1.0)
        w[p + "post_attention_layernorm.bias"] = normal(h, std=0.1)
        w[p + "attention.query_key_value.weight"] = normal(3 * h, h,
                                                           std=h ** -0.5)
        w[p + "attention.query_key_value.bias"] = normal(3 * h, std=0.1)
        w[p + "attention.dense.weight"] = normal(h, h, std=h ** -0.5)
        w[p + "attention.dense.bias"] = normal(h, std=0.1)
        w[p + "mlp.dense_h_to_4h.weight"] = normal(ff, h, std=h ** -0.5)
        w[p + "mlp.dense_h_to_4h.bias"] = normal(ff, std=0.1)
        w[p + "mlp.dense_4h_to_h.weight"] = normal(h, ff, std=ff ** -0.5)
        w[p + "mlp.dense_4h_to_h.bias"] = normal(h, std=0.1)
        if extra_buffers:
            # Buffers old Pythia checkpoints carry; loaders must ignore them.
            n = config["max_position_embeddings"]
            w[p + "attention.bias"] = torch.tril(torch.ones(n, n)).view(
                1, 1, n, n)
            w[p + "attention.masked_bias"] = torch.tensor(-1e9)
            rot = int(h // config["num_attention_heads"] * config["rotary_pct"])
            w[p + "attention.rotary_emb.inv_freq"] = 1.0 / (
                config["rotary_emb_base"]
                ** (torch.arange(0, rot, 2).float() / rot))
    w["gpt_neox.final_layer_norm.weight"] = normal(h, std=0.1, mean=1.0)
    w["gpt_neox.final_layer_norm.bias"] = normal(h, std=0.1)
    w["embed_out.weight"] = normal(v, h, std=3.0 * h ** -0.5)
    return w


# ------------------------------------------------------------ safetensors ---

_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16",
              torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, align=True):
    """Writes {name: tensor} as safetensors: u64 LE header length, JSON, data.

    With align=False the header is not padded, so the data section (and
    every tensor in it) may start at an odd address in a mapping.
    """
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if align:
        text += b" " * (-(len(text) + 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def write_checkpoint(directory, config, weights, dtype=torch.float32,
                     drop=(), replace=None, align=True, fmt="safetensors"):
    """config.json + model.safetensors, weights stored as `dtype`; with
    fmt="bin", pytorch_model.bin written by torch.save instead (an
    OrderedDict, as transformers' save_pretrained wrote Pythia's).

    Returns the float32 weights the stored ones decode to (what a correct
    loader computes with). `drop` names tensors to leave out; `replace` maps
    names to tensors stored instead (e.g. of a wrong shape).
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    stored = {}
    for name, t in weights.items():
        if name in drop:
            continue
        if replace and name in replace:
            t = replace[name]
        stored[name] = t.to(dtype) if t.is_floating_point() else t
    if fmt == "bin":
        torch.save(collections.OrderedDict(stored),
                   os.path.join(directory, "pytorch_model.bin"))
    else:
        write_safetensors(os.path.join(directory, "model.safetensors"), stored,
                          align=align)
    return {name: t.float() for name, t in stored.items()}


# ------------------------------------------------------------------ model ---


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class GptNeoxRef:
    """GPTNeoXForCausalLM inference on explicit weight tensors."""

    def __init__(self, config, weights):
        self.c = config
        self.w = {k: v.float() for k, v in weights.items()}
        self.heads = config["num_attention_heads"]
        self.head_dim = config["hidden_size"] // self.heads
        self.rot = int(self.head_dim * config["rotary_pct"])
        self.eps = config["layer_norm_eps"]
        act = config["hidden_act"]
        if act == "gelu":
            self.act = lambda x: torch.nn.functional.gelu(x)
        elif act in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
            self.act = lambda x: 0.5 * x * (1.0 + torch.tanh(
                math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
        else:
            raise ValueError(act)

    def _cos_sin(self, positions):
        inv_freq = 1.0 / (self.c["rotary_emb_base"] ** (
            torch.arange(0, self.rot, 2).float() / self.rot))
        freqs = torch.einsum("i,j->ij", positions.float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[None, None], emb.sin()[None, None]

    def _ln(self, x, name):
        return torch.nn.functional.layer_norm(
            x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"],
            self.eps)

    def _linear(self, x, name, bias=True):
        return torch.nn.functional.linear(
            x, self.w[name + ".weight"], self.w[name + ".bias"] if bias else None)

    def _attention(self, x, i, past, positions, want_probs):
        b, s, _ = x.shape
        p = f"gpt_neox.layers.{i}.attention"
        qkv = self._linear(x, p + ".query_key_value")
        qkv = qkv.view(b, s, self.heads, 3 * self.head_dim).permute(0, 2, 1, 3)
        q = qkv[..., :self.head_dim]
        k = qkv[..., self.head_dim:2 * self.head_dim]
        v = qkv[..., 2 * self.head_dim:]
        if self.rot > 0:
            cos, sin = self._cos_sin(positions)
            q_r, q_pass = q[..., :self.rot], q[..., self.rot:]
            k_r, k_pass = k[..., :self.rot], k[..., self.rot:]
            q = torch.cat((q_r * cos + _rotate_half(q_r) * sin, q_pass), dim=-1)
            k = torch.cat((k_r * cos + _rotate_half(k_r) * sin, k_pass), dim=-1)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        total = k.shape[2]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        q_pos = torch.arange(total - s, total)[:, None]
        k_pos = torch.arange(total)[None, :]
        scores = scores.masked_fill(k_pos > q_pos, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, s, -1)
        out = self._linear(out, p + ".dense")
        return out, present, (probs if want_probs else None)

    def _mlp(self, x, i):
        p = f"gpt_neox.layers.{i}.mlp"
        return self._linear(self.act(self._linear(x, p + ".dense_h_to_4h")),
                            p + ".dense_4h_to_h")

    @torch.no_grad()
    def forward(self, ids, past=None, attention_layer=None):
        """ids [batch, seq] -> (logits [batch, seq, vocab], past, probs).

        `past` is a list of (keys, values) per layer, or None; the returned
        one includes these tokens. `probs` are layer `attention_layer`'s
        attention probabilities [batch, heads, seq, total], or None.
        """
        ids = torch.as_tensor(ids, dtype=torch.long)
        start = 0 if past is None else past[0][0].shape[2]
        positions = torch.arange(start, start + ids.shape[1])
        h = torch.nn.functional.embedding(ids, self.w["gpt_neox.embed_in.weight"])
        presents, probs = [], None
        for i in range(self.c["num_hidden_layers"]):
            p = f"gpt_neox.layers.{i}"
            attn, present, pr = self._attention(
                self._ln(h, p + ".input_layernorm"), i,
                None if past is None else past[i], positions,
                i == attention_layer)
            presents.append(present)
            if pr is not None:
                probs = pr
            if self.c["use_parallel_residual"]:
                mlp = self._mlp(self._ln(h, p + ".post_attention_layernorm"), i)
                h = mlp + attn + h
            else:
                m = attn + h
                h = self._mlp(self._ln(m, p + ".post_attention_layernorm"), i) + m
        h = self._ln(h, "gpt_neox.final_layer_norm")
        logits = self._linear(h, "embed_out", bias=False)
        return logits, presents, probs

    @torch.no_grad()
    def greedy(self, prompt, n, use_cache=True):
        """Greedy continuation: (tokens, log-probabilities)."""
        seq = list(prompt)
        tokens, logprobs = [], []
        past = None
        feed = seq
        for _ in range(n):
            if use_cache:
                logits, past, _ = self.forward([feed], past)
            else:
                logits, _, _ = self.forward([seq])
            row = logits[0, -1]
            t = int(torch.argmax(row))
            tokens.append(t)
            logprobs.append(float(torch.log_softmax(row.double(), -1)[t]))
            seq.append(t)
            feed = [t]
        return tokens, logprobs
