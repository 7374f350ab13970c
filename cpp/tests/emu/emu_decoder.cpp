// emu_decoder.h in the emulator build: the plain arrays as the decoder's own types.
#include "tests/emu/emu_decoder.h"

#include <vector>

#include "model/qwen3_cuda_decode.h"
#include "model/qwen3_cuda_model.h"
#include "sampler/token_logprob_cuda.h"
#include "tests/emu/emu_qwen3_config.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

struct Decoder::Impl {
  std::unique_ptr<npr::Qwen3CudaModel> model;  // first in, last out: the pages use its context
  std::unique_ptr<npr::KvPagesCuda> pages;
  std::unique_ptr<npr::Qwen3CudaDecoder> decoder;
  std::string error;
  int64_t rows = 0;  // the last step's logits rows
};

namespace {

template <typename Impl>
npr::Status build(const DecoderModel& d, int32_t num_blocks, int32_t block_tokens,
                  const DecoderOptions& o, Impl* s) {
  const npr::Qwen3Config c = qwen3_config_of(d);
  NPR_TRY(npr::Qwen3CudaModel::create(c, npr::DevDType::kBF16, &s->model));
  s->model->context().attention_wgmma = o.attention_wgmma;
  for (const npr::ParamInfo& p : s->model->params())
    NPR_TRY(s->model->set_param(p, d.weights + p.offset));
  NPR_TRY(npr::KvPagesCuda::create(s->model->context(), npr::DevDType::kBF16, c.layers, num_blocks,
                                   block_tokens, c.kv_heads, c.head_dim, &s->pages));
  s->decoder = std::make_unique<npr::Qwen3CudaDecoder>(*s->model, *s->pages);
  s->decoder->use_graphs = o.use_graphs;
  s->decoder->step_kernel = o.step_kernel;
  s->decoder->step_kernel_timing = o.step_kernel_timing;
  s->decoder->fused_qk_write = o.fused_qk_write;
  s->decoder->attention_kv_ahead = o.attention_kv_ahead;
  s->decoder->fused_chunk_attention = o.fused_chunk_attention;
  s->decoder->prefetch_next_weights = o.prefetch_next_weights;
  s->decoder->work_options.min_pages_per_item = o.pages_per_item;
  s->decoder->work_options.max_items_per_run = o.items_per_run;
  s->decoder->candidate_one_row = o.candidate_one_row;
  s->decoder->candidate_kernels = o.candidate_kernels;
  s->decoder->skinny_tensor_cores = o.tensor_core_linears;
  return npr::Status::ok();
}

}  // namespace

Decoder::Decoder(const DecoderModel& m, int32_t num_blocks, int32_t block_tokens,
                 const DecoderOptions& o)
    : impl_(new Impl) {
  impl_->error = status_message(build(m, num_blocks, block_tokens, o, impl_.get()));
}

Decoder::~Decoder() {
  impl_->decoder.reset();
  impl_->pages.reset();
}

const std::string& Decoder::error() const {
  return impl_->error;
}

std::string Decoder::apply(const std::vector<int32_t>& copies) {
  if (!impl_->error.empty()) return impl_->error;
  std::vector<npr::SlotCopy> list;
  for (size_t i = 0; i + 5 <= copies.size(); i += 5)
    list.push_back(
        npr::SlotCopy{copies[i], copies[i + 1], copies[i + 2], copies[i + 3], copies[i + 4]});
  return status_message(impl_->pages->apply(list));
}

std::string Decoder::step(const DecoderStep& s, bool cascade, float* logits) {
  if (!impl_->error.empty()) return impl_->error;
  npr::Qwen3DecodeBatch b;
  b.sequences = s.sequences;
  b.cu_new = s.cu_new;
  b.ids = s.ids;
  b.positions = s.positions;
  b.table = npr::PageTable{s.sequences, s.indptr, s.indices, s.last_len};
  impl_->rows = s.sequences;
  return status_message(impl_->decoder->step(b, cascade, logits));
}

std::string Decoder::read_logits(float* logits) {
  if (!impl_->error.empty()) return impl_->error;
  const int64_t bytes = 4 * impl_->rows * impl_->model->config().vocab;
  return status_message(impl_->model->context().download(logits, impl_->decoder->device_logits(),
                                                         bytes, "emulated decoder: logits"));
}

std::string Decoder::logprobs(const int32_t* rows, const int32_t* tokens, int64_t n, float* out) {
  if (!impl_->error.empty()) return impl_->error;
  std::vector<npr::TokenQuery> q;
  for (int64_t i = 0; i < n; ++i) q.push_back(npr::TokenQuery{rows[i], tokens[i]});
  return status_message(npr::token_logprobs_cuda(impl_->model->context(), out,
                                                 impl_->decoder->device_logits(), impl_->rows,
                                                 impl_->model->config().vocab, q.data(), n));
}

DecoderStats Decoder::stats() const {
  if (!impl_->decoder) return DecoderStats{};
  const npr::Qwen3CudaDecoder::Stats& s = impl_->decoder->stats();
  return DecoderStats{s.eager_steps,  s.graph_replays, s.graph_captures,
                      s.kernel_steps, s.kernel_grid,   s.kernel_timed_steps,
                      s.kernel_error, s.graph_error,   s.candidate_steps};
}

}  // namespace emu
