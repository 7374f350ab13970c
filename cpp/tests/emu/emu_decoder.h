// Qwen3CudaDecoder (model/qwen3_cuda_decode.h) under the emulator, for test_emu_decoder.cpp: a
// bf16 Qwen3CudaModel from plain fp32 parameters, KvPagesCuda, and the decoder's steps, all on
// the emulated device (emu_cuda_api.h): its graphs captured and replayed, its one-kernel step
// and its fallbacks as on a GPU. Plain types only: compiled into the emulator build
// (emu_decoder.cpp, where namespace npr is npr_emu) and into the test.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace emu {

struct DecoderModel {
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim;
  float rms_eps;
  double rope_theta;
  bool tied;
  const float* weights;  // the parameter table's arena (qwen3_param_table offsets), fp32
};

struct DecoderOptions {
  bool use_graphs = true, step_kernel = false, step_kernel_timing = false;
  bool fused_qk_write = true, prefetch_next_weights = false;
  bool attention_kv_ahead = false;    // the attend kernel's K/V prefetch in programmatic launches
  bool fused_chunk_attention = true;  // steps of chunks: the fused attention among their tokens
  int32_t pages_per_item = 4, items_per_run = 16;  // the attention plan's DecodeWorkOptions
  // The candidate kernels (programmatic launches): in graph steps of one sequence (the
  // decoder's default), in every step, in none.
  bool candidate_one_row = true, candidate_kernels = false;
  bool tensor_core_linears = true;  // the skinny layers on tensor cores (else CUDA cores)
  // The model context's attention_wgmma (CudaContext): which training forward the fused chunk
  // attention takes; 0 the mma.sync one, 10 the warp-specialised tensor-map one the addon picks
  // on an sm_90 device.
  int32_t attention_wgmma = 0;
};

// One step: `sequences` of new tokens (cu_new offsets, ids, positions) over a CSR page table
// (indptr, indices, last_len) that already holds them.
struct DecoderStep {
  int64_t sequences;
  const int32_t *cu_new, *ids, *positions;
  const int32_t *indptr, *indices, *last_len;
};

// What the decoder says it did (Qwen3CudaDecoder::Stats).
struct DecoderStats {
  int64_t eager_steps, graph_replays, graph_captures, kernel_steps, kernel_grid, kernel_timed_steps;
  std::string kernel_error, graph_error;
  int64_t candidate_steps;
};

class Decoder {
 public:
  Decoder(const DecoderModel& m, int32_t num_blocks, int32_t block_tokens, const DecoderOptions& o);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // "" or the error of the set-up (device memory, weights upload).
  const std::string& error() const;
  // A fork's or join's slot copies, (n, 5): src_block, src_slot, dst_block, dst_slot, count.
  std::string apply(const std::vector<int32_t>& copies);
  // logits (sequences, vocab); null: they stay on the device (the engine's decodeLaunch: the
  // step is only enqueued, nothing waits for it), for the reads below.
  std::string step(const DecoderStep& s, bool cascade, float* logits);
  // The last step's logits (sequences, vocab) as left on the device, downloaded.
  std::string read_logits(float* logits);
  // log p(tokens[i]) of the last step's logits row rows[i] (n), on the device
  // (token_logprobs_cuda, as the engine's scripted reads take them).
  std::string logprobs(const int32_t* rows, const int32_t* tokens, int64_t n, float* out);
  DecoderStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace emu
