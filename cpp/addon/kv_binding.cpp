// NativeKv: the paged KV cache of one model (bookkeeping + pages) and its decode step. The
// bookkeeping is the host's KvCache whatever the backend; the pages live where the model does
// (CPU memory, or device memory for a CUDA model, in its precision) and so does the step.
//   new NativeKv(model, { numBlocks?, budgetBytes?, memoryFraction?, blockTokens? = 16, and the
//                         decode options of kv_decode_options.h })
//   (one of numBlocks / budgetBytes / memoryFraction (of the device memory free now, CUDA only))
//   openRequest(maxNewTokens) -> id;  closeRequest(id);  createSequence(request) -> seq
//   append(seq, tokens, generated) -> 'ok' | 'no-blocks' | 'no-budget' (nothing changed unless
//   'ok') fork(seq, n) -> { answer, children: Int32Array };  join(seq);  free(seq) length(seq),
//   freeBlocks, numBlocks, pageBytes, checkInvariants() decode({ seqs, cuNew, ids, positions:
//   Int32Array, cascade? }, logits?: Float32Array) -> Promise, decodeSync(same) -> undefined (on
//   the JS thread), decodeLaunch(batch) -> undefined (on the JS thread; on a CUDA model it returns
//   once the step is enqueued, and the step's first read waits for it)
//   backend ('cpu' | 'cuda'), deviceStats() -> { eagerSteps, graphCaptures, graphReplays,
//   graphError, kernelSteps, kernelGrid, kernelError, kernelPhaseMs, kernelTimedSteps,
//   profiledSteps, opMs, deviceMs, deviceTimedSteps }
//   (CUDA; zeros on the CPU) and
//   hostMs { calls, queueMs, prepMs, launchMs, waitMs, resolveMs } (the decode calls' host time),
//   deviceCopyBandwidth(megabytes) -> GB/s (CUDA; 0 CPU)
// decode: the KV cache must already cover each sequence's new tokens (append them first); the
// logits (seqs.length, vocab) of the token after each sequence's last new token are written to
// `logits` when given, and kept where the model is (device memory for a CUDA model) until the
// next decode either way, for the step's results (step_results.h):
//   logprobs(logitRows, tokens: Int32Array, out: Float32Array): log-softmax at given tokens;
//   sample(logitRows: Int32Array, rows, params, out): the sampler (the sample() arguments);
//   logitsRows(logitRows: Int32Array, out: Float32Array): copies of whole rows.
// On a CUDA model these run on the device and only their results cross to the host.
// Shares the model's busy flag: no forward/backward/decode may overlap on one model.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/bindings.h"
#include "addon/kv_decode_options.h"
#include "addon/kv_stats.h"
#include "addon/model_binding.h"
#include "addon/runtime.h"
#include "addon/step_reads.h"
#include "addon/step_results.h"
#include "kvcache/kv_cache.h"
#include "kvcache/kv_pages.h"
#include "model/qwen3_decode.h"
#if defined(NPR_WITH_CUDA)
#include "kvcache/kv_pages_cuda.h"
#include "model/qwen3_cuda_decode.h"
#include "model/qwen3_cuda_model.h"
#endif

namespace npr::addon {

namespace {

int32_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                int64_t lo, int64_t hi) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set(name, info[i]);
  return static_cast<int32_t>(int_field(o, fn, name, lo, hi));
}

class KvHandle : public Napi::ObjectWrap<KvHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeKv",
                       {InstanceMethod<&KvHandle::OpenRequest>("openRequest"),
                        InstanceMethod<&KvHandle::CloseRequest>("closeRequest"),
                        InstanceMethod<&KvHandle::CreateSequence>("createSequence"),
                        InstanceMethod<&KvHandle::Append>("append"),
                        InstanceMethod<&KvHandle::Fork>("fork"),
                        InstanceMethod<&KvHandle::Join>("join"),
                        InstanceMethod<&KvHandle::Free>("free"),
                        InstanceMethod<&KvHandle::Length>("length"),
                        InstanceMethod<&KvHandle::CheckInvariants>("checkInvariants"),
                        InstanceMethod<&KvHandle::Decode>("decode"),
                        InstanceMethod<&KvHandle::DecodeSync>("decodeSync"),
                        InstanceMethod<&KvHandle::DecodeLaunch>("decodeLaunch"),
                        InstanceMethod<&KvHandle::Logprobs>("logprobs"),
                        InstanceMethod<&KvHandle::Sample>("sample"),
                        InstanceMethod<&KvHandle::LogitsRows>("logitsRows"),
                        InstanceMethod<&KvHandle::DeviceStats>("deviceStats"),
                        InstanceMethod<&KvHandle::CopyBandwidth>("deviceCopyBandwidth"),
                        InstanceAccessor<&KvHandle::Backend>("backend"),
                        InstanceAccessor<&KvHandle::FreeBlocks>("freeBlocks"),
                        InstanceAccessor<&KvHandle::NumBlocks>("numBlocks"),
                        InstanceAccessor<&KvHandle::PageBytes>("pageBytes")});
  }

  explicit KvHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvHandle>(info) {
    const char* fn = "NativeKv";
    if (!info.IsConstructCall()) throw_type(info.Env(), std::string(fn) + ": call it with new");
    model_ = qwen3_access(info[0], "NativeKv: argument 'model'");
    // On CUDA a new cache clears its pages on the model's stream, which a decode running on a
    // worker thread may be capturing into a graph (the clear would join that graph, every replay
    // wiping this cache); one contract on every backend.
    if (*model_.busy)
      throw Napi::Error::New(info.Env(), std::string(fn) +
                                             ": the model is busy (a decode, forward or backward "
                                             "call is running on it); await it first");
    model_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
    Napi::Object o = object_arg(info, 1, fn, "options", false);
    const int32_t bt = static_cast<int32_t>(int_field(o, fn, "blockTokens", 1, 1024, true, 16));
    const Qwen3Config& c = config();
    int32_t blocks = 0;
    if (o.Has("numBlocks") && !o.Get("numBlocks").IsUndefined()) {
      blocks = static_cast<int32_t>(int_field(o, fn, "numBlocks", 1, 1 << 24));
    } else if (model_.cuda && (o.Has("budgetBytes") || o.Has("memoryFraction"))) {
#if defined(NPR_WITH_CUDA)
      const int64_t budget =
          o.Has("budgetBytes") ? static_cast<int64_t>(number_field(o, fn, "budgetBytes", false, 0))
                               : KvPagesCuda::budget_from_free_fraction(
                                     number_field(o, fn, "memoryFraction", false, 0));
      blocks = KvPagesCuda::blocks_for_budget(
          budget,
          KvPagesCuda::block_bytes(model_.cuda->precision(), c.layers, bt, c.kv_heads, c.head_dim));
      if (blocks <= 0)
        throw_range(info.Env(), std::string(fn) + ": a budget of " + std::to_string(budget) +
                                    " bytes buys no KV block; give more bytes or a larger "
                                    "memoryFraction (in (0, 1])");
#endif
    } else {
      throw_type(info.Env(), std::string(fn) +
                                 ": options.numBlocks is required (or, for a CUDA model, "
                                 "budgetBytes or memoryFraction)");
    }
    // Read (and type-checked) on every backend; only a CUDA decoder uses them.
    [[maybe_unused]] const KvDecodeOptions decode_options = kv_decode_options(o, fn);
    Status st;
    if (model_.cuda) {
#if defined(NPR_WITH_CUDA)
      st = KvPagesCuda::create(model_.cuda->context(), model_.cuda->precision(), c.layers, blocks,
                               bt, c.kv_heads, c.head_dim, &dev_pages_);
      if (st.is_ok()) {
        decoder_ = std::make_unique<Qwen3CudaDecoder>(*model_.cuda, *dev_pages_);
        apply_kv_decode_options(decode_options, *decoder_);
      }
#endif
    } else {
      st = KvPages::create(c.layers, blocks, bt, c.kv_heads, c.head_dim, &pages_);
    }
    if (!st.is_ok()) throw_status(info.Env(), st);
    kv_ = std::make_unique<KvCache>(blocks, bt);
  }

 private:
  void idle(Napi::Env env, const char* fn) {
    if (*model_.busy || decoding_)
      throw Napi::Error::New(
          env, std::string(fn) + ": the model or this cache is busy; await the running call first");
  }
  void check(Napi::Env env, const Status& st) {
    if (!st.is_ok()) throw_status(env, st);
  }
  const Qwen3Config& config() const {
#if defined(NPR_WITH_CUDA)
    if (model_.cuda) return model_.cuda->config();
#endif
    return model_.model->config();
  }
  // Fork/join copies into the pages, wherever they live.
  Status apply(const std::vector<SlotCopy>& copies) {
#if defined(NPR_WITH_CUDA)
    if (dev_pages_) return dev_pages_->apply(copies);
#endif
    pages_.apply(copies);
    return Status::ok();
  }
  Napi::Value OpenRequest(const Napi::CallbackInfo& info) {
    return Napi::Number::New(
        info.Env(), kv_->open_request(int_arg(info, 0, "openRequest", "maxNewTokens", 0, 1 << 30)));
  }
  Napi::Value CloseRequest(const Napi::CallbackInfo& info) {
    idle(info.Env(), "closeRequest");
    check(info.Env(), kv_->close_request(int_arg(info, 0, "closeRequest", "request", 0, 1 << 30)));
    return info.Env().Undefined();
  }
  Napi::Value CreateSequence(const Napi::CallbackInfo& info) {
    int32_t seq;
    check(info.Env(),
          kv_->create_sequence(int_arg(info, 0, "createSequence", "request", 0, 1 << 30), &seq));
    return Napi::Number::New(info.Env(), seq);
  }
  static const char* answer(KvAnswer a) {
    return a == KvAnswer::kOk ? "ok" : a == KvAnswer::kNoBlocks ? "no-blocks" : "no-budget";
  }
  Napi::Value Append(const Napi::CallbackInfo& info) {
    idle(info.Env(), "append");
    const int32_t seq = int_arg(info, 0, "append", "seq", 0, 1 << 30);
    const int32_t n = int_arg(info, 1, "append", "tokens", 0, 1 << 30);
    if (!info[2].IsBoolean()) throw_type(info.Env(), "append: generated must be a boolean");
    KvAnswer a;
    check(info.Env(), kv_->append(seq, n, info[2].As<Napi::Boolean>().Value(), &a));
    return Napi::String::New(info.Env(), answer(a));
  }
  Napi::Value Fork(const Napi::CallbackInfo& info) {
    idle(info.Env(), "fork");
    const int32_t seq = int_arg(info, 0, "fork", "seq", 0, 1 << 30);
    const int32_t n = int_arg(info, 1, "fork", "n", 1, 1024);
    std::vector<int32_t> kids;
    std::vector<SlotCopy> copies;
    KvAnswer a;
    check(info.Env(), kv_->fork(seq, n, &kids, &a, &copies));
    check(info.Env(), apply(copies));
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("answer", answer(a));
    Napi::Int32Array arr = Napi::Int32Array::New(info.Env(), kids.size());
    for (size_t i = 0; i < kids.size(); ++i) arr[i] = kids[i];
    out.Set("children", arr);
    return out;
  }
  Napi::Value Join(const Napi::CallbackInfo& info) {
    idle(info.Env(), "join");
    std::vector<SlotCopy> copies;
    check(info.Env(), kv_->join(int_arg(info, 0, "join", "seq", 0, 1 << 30), &copies));
    check(info.Env(), apply(copies));
    return info.Env().Undefined();
  }
  Napi::Value Free(const Napi::CallbackInfo& info) {
    idle(info.Env(), "free");
    check(info.Env(), kv_->free_sequence(int_arg(info, 0, "free", "seq", 0, 1 << 30)));
    return info.Env().Undefined();
  }
  Napi::Value Length(const Napi::CallbackInfo& info) {
    return Napi::Number::New(
        info.Env(),
        static_cast<double>(kv_->length(int_arg(info, 0, "length", "seq", 0, 1 << 30))));
  }
  Napi::Value CheckInvariants(const Napi::CallbackInfo& info) {
    check(info.Env(), kv_->check_invariants());
    return info.Env().Undefined();
  }
  Napi::Value FreeBlocks(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), kv_->free_blocks());
  }
  Napi::Value NumBlocks(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), kv_->num_blocks());
  }
  Napi::Value PageBytes(const Napi::CallbackInfo& info) {
#if defined(NPR_WITH_CUDA)
    if (dev_pages_) return Napi::Number::New(info.Env(), static_cast<double>(dev_pages_->bytes()));
#endif
    return Napi::Number::New(info.Env(), static_cast<double>(pages_.bytes()));
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), model_.cuda ? "cuda" : "cpu");
  }
  // GB/s of device-to-device copies (read + write) of `megabytes`; 0 on the CPU backend.
  Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
    idle(info.Env(), "deviceCopyBandwidth");
    double gbps = 0.0;
#if defined(NPR_WITH_CUDA)
    if (model_.cuda) {
      const int64_t mb = int_arg(info, 0, "deviceCopyBandwidth", "megabytes", 1, 1 << 16);
      check(info.Env(), device_copy_bandwidth(model_.cuda->context(), mb << 20, 5, &gbps));
    }
#endif
    return Napi::Number::New(info.Env(), gbps);
  }
  Napi::Value DeviceStats(const Napi::CallbackInfo& info) {
    Qwen3CudaDecoder* decoder = nullptr;
#if defined(NPR_WITH_CUDA)
    decoder = decoder_.get();
#endif
    Status st;
    Napi::Object o = kv_device_stats(info.Env(), decoder, !decoding_, host_, &st);
    check(info.Env(), st);
    return o;
  }
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value DecodeSync(const Napi::CallbackInfo& info);
  Napi::Value DecodeLaunch(const Napi::CallbackInfo& info);
  // decodeSync (wait) and decodeLaunch (no wait) on the JS thread.
  Napi::Value decode_here(const Napi::CallbackInfo& info, const char* fn, bool wait);
  // After a read of the step's results that asked the device for `n` things: a launched step has
  // been waited for by then. A device error there may be that step's, and says so; a one-kernel
  // step whose grid barrier timed out (garbage results) is an error too.
  void read_done(Napi::Env env, const char* fn, int64_t n, const Status& read);
  Napi::Value Logprobs(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value LogitsRows(const Napi::CallbackInfo& info);
  // The last step's logits where they are kept (host or device); step_rows_ = 0 when none.
  StepLogits step_logits(Napi::Env env, const char* fn);

  friend class DecodeWorker;
  // A decode call's inputs, checked (decode and decodeSync share them): the JS arrays, which stay
  // alive for the call, and the sequences' page table read off the cache.
  struct DecodeArgs {
    Napi::Int32Array seqs, cu, ids, pos;
    Napi::Float32Array logits;  // empty: leave the logits where the model is
    bool cascade = true;
    std::vector<int32_t> indptr{0}, indices, last;
  };
  DecodeArgs decode_args(const Napi::CallbackInfo& info, const char* fn);
  // One decode step on the calling thread (a worker's or the JS thread): the CUDA step and, with
  // `wait`, the wait for the device (*wait_ms), or the CPU step into host_logits_ (copied to
  // `logits` when given). The batch's table must point into the caller's arrays.
  Status run_decode(const Qwen3DecodeBatch& batch, bool cascade, float* logits,
                    const CpuContext& cpu, double* wait_ms, bool wait = true);
  // Waits for a step decodeLaunch left unread, before the next decode (on the JS thread): at most
  // one launched step is ever in flight, and its fault surfaces before anything else is queued.
  void settle_launched(Napi::Env env, const char* fn);
  Qwen3Access model_;
  Napi::ObjectReference model_ref_;
  KvPages pages_;  // CPU model
#if defined(NPR_WITH_CUDA)
  std::unique_ptr<KvPagesCuda> dev_pages_;  // CUDA model
  std::unique_ptr<Qwen3CudaDecoder> decoder_;
#endif
  std::unique_ptr<KvCache> kv_;
  bool decoding_ = false;
  // A CUDA step from decodeLaunch that no call has waited for yet.
  bool launched_ = false;
  // Host milliseconds of the decode calls, summed (folded in on the JS thread: by each call's
  // OnOK, or by decodeSync): queued (the call to its worker thread's start), waited (for the
  // device), resolved (the worker's end to the promise's settling on the JS thread).
  KvHostTimes host_;
  std::vector<float> host_logits_;  // (step_rows_, vocab): a CPU model's last step
  int64_t step_rows_ = 0;
};

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, KvHandle* h)
      : Napi::AsyncWorker(env, "npr.kv.decode"),
        deferred_(Napi::Promise::Deferred::New(env)),
        h_(h),
        runtime_(cpu_runtime()) {
    h_->decoding_ = true;
    *h_->model_.busy = true;
  }
  std::vector<Napi::ObjectReference> keep;
  std::vector<int32_t> indptr{0}, indices, last;
  Qwen3DecodeBatch batch;
  float* logits = nullptr;  // the caller's copy, or null
  bool cascade = true;
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    started_ = Clock::now();
    batch.table = PageTable{batch.sequences, indptr.data(), indices.data(), last.data()};
    status_ = h_->run_decode(batch, cascade, logits, runtime_.context(), &wait_ms_);
    ended_ = Clock::now();
  }
  void OnOK() override {
    h_->host_.queue_ms += ms(queued_, started_);
    h_->host_.wait_ms += wait_ms_;
    h_->host_.resolve_ms += ms(ended_, Clock::now());
    ++h_->host_.calls;
    done();
    h_->step_rows_ = status_.is_ok() ? batch.sequences : 0;
    if (status_.is_ok())
      deferred_.Resolve(Env().Undefined());
    else
      deferred_.Reject(status_error(Env(), status_).Value());
  }
  void OnError(const Napi::Error& e) override {
    done();
    h_->step_rows_ = 0;
    deferred_.Reject(e.Value());
  }

 private:
  void done() {
    h_->decoding_ = false;
    *h_->model_.busy = false;
  }
  using Clock = std::chrono::steady_clock;
  static double ms(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  }
  Napi::Promise::Deferred deferred_;
  KvHandle* h_;
  CpuRuntime runtime_;
  Status status_;
  Clock::time_point queued_ = Clock::now(), started_ = queued_, ended_ = queued_;
  double wait_ms_ = 0.0;
};

void KvHandle::settle_launched(Napi::Env env, const char* fn) {
  if (!launched_) return;
  launched_ = false;
#if defined(NPR_WITH_CUDA)
  check(
      env,
      model_.cuda->context().sync(
          (std::string(fn) + ": the step launched by the last decodeLaunch, never read").c_str()));
#endif
}

void KvHandle::read_done(Napi::Env env, const char* fn, int64_t n, const Status& read) {
  Status st = read;
#if defined(NPR_WITH_CUDA)
  // A read that went through waited for the step: a one-kernel step whose barrier timed out left
  // garbage there, which must not pass for tokens or log-probabilities.
  if (st.is_ok() && n > 0 && decoder_) st = decoder_->step_kernel_status();
#endif
  const bool was_launched = launched_ && n > 0;
  if (was_launched && (read.is_ok() || read.code() == StatusCode::kCuda)) launched_ = false;
  if (was_launched && st.code() == StatusCode::kCuda)
    throw_status(env, Status(st.code(), st.message() + " (" + fn +
                                            " was the first wait for the step of the last "
                                            "decodeLaunch: the fault may be that step's)"));
  check(env, st);
}

KvHandle::DecodeArgs KvHandle::decode_args(const Napi::CallbackInfo& info, const char* fn) {
  idle(info.Env(), fn);
  const std::string f = fn;
  Napi::Object o = object_arg(info, 0, fn, "batch", false);
  DecodeArgs a;
  a.seqs = int32_arg(o.Get("seqs"), fn, "batch.seqs");
  a.cu = int32_arg(o.Get("cuNew"), fn, "batch.cuNew");
  a.ids = int32_arg(o.Get("ids"), fn, "batch.ids");
  a.pos = int32_arg(o.Get("positions"), fn, "batch.positions");
  a.cascade = bool_field(o, fn, "cascade", true);
  const Napi::Int32Array& cu = a.cu;
  const size_t S = a.seqs.ElementLength();
  if (S == 0 || cu.ElementLength() != S + 1 || cu[0] != 0)
    throw_range(info.Env(), f + ": batch.cuNew must have seqs.length + 1 entries starting at 0");
  for (size_t s = 0; s < S; ++s)
    if (cu[s + 1] <= cu[s])
      throw_range(info.Env(), f + ": every sequence needs at least one new token");
  const size_t N = static_cast<size_t>(cu[S]);
  if (a.ids.ElementLength() != N || a.pos.ElementLength() != N)
    throw_range(info.Env(), f + ": batch.ids and batch.positions must hold cuNew[last] = " +
                                std::to_string(N) + " entries");
  const int64_t V = config().vocab;
  const bool copy_out = !info[1].IsUndefined() && !info[1].IsNull();
  if (copy_out && (!info[1].IsTypedArray() ||
                   info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
                   info[1].As<Napi::Float32Array>().ElementLength() != S * V))
    throw_type(info.Env(), f +
                               ": argument 'logits' must be a Float32Array of seqs.length * "
                               "vocab = " +
                               std::to_string(S * V) + " elements, or left out");
  if (copy_out) a.logits = info[1].As<Napi::Float32Array>();
  for (size_t s = 0; s < S; ++s) {
    const int32_t seq = a.seqs[s];
    if (!kv_->is_live(seq) || !kv_->children(seq).empty() || kv_->length(seq) < cu[s + 1] - cu[s])
      throw_range(info.Env(), f + ": sequence " + std::to_string(seq) +
                                  " is not live, is forked, or its cache does not cover its new "
                                  "tokens (append them first)");
    for (int32_t b : kv_->table(seq)) a.indices.push_back(b);
    a.indptr.push_back(static_cast<int32_t>(a.indices.size()));
    const int32_t rem = static_cast<int32_t>(kv_->length(seq) % kv_->block_tokens());
    a.last.push_back(rem == 0 ? kv_->block_tokens() : rem);
  }
  settle_launched(info.Env(), fn);
  return a;
}

Status KvHandle::run_decode(const Qwen3DecodeBatch& batch, bool cascade, float* logits,
                            const CpuContext& cpu, double* wait_ms, bool wait) {
  *wait_ms = 0.0;
#if defined(NPR_WITH_CUDA)
  if (decoder_) {
    Status st = decoder_->step(batch, cascade, logits);
    // With `wait` the call ends when the step has run: its errors surface here, not in the next
    // call. (A copy of the logits has waited already.) Only that wait is wait time: a launch
    // (decodeLaunch) has none, not the nanoseconds between two clock reads.
    if (st.is_ok() && !logits && wait) {
      const auto waiting = std::chrono::steady_clock::now();
      st = model_.cuda->context().sync("decode (cuda): the step");
      *wait_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - waiting)
              .count();
    }
    return st;
  }
#endif
  float* kept = host_logits_.data();
  const Status st = qwen3_decode_step(cpu, *model_.model, pages_, batch, cascade, kept);
  if (st.is_ok() && logits) std::copy(kept, kept + host_logits_.size(), logits);
  return st;
}

Napi::Value KvHandle::Decode(const Napi::CallbackInfo& info) {
  DecodeArgs a = decode_args(info, "decode");
  const size_t S = a.seqs.ElementLength();
  step_rows_ = 0;  // the kept logits are the new step's from here on
  if (!model_.cuda) host_logits_.assign(S * static_cast<size_t>(config().vocab), 0.0f);
  auto* w = new DecodeWorker(info.Env(), this);
  for (const Napi::Value& v : {Napi::Value(a.seqs), Napi::Value(a.cu), Napi::Value(a.ids),
                               Napi::Value(a.pos), Napi::Value(info.This())})
    w->keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
  if (!a.logits.IsEmpty()) w->keep.push_back(Napi::Persistent(a.logits.As<Napi::Object>()));
  w->indptr = std::move(a.indptr);
  w->indices = std::move(a.indices);
  w->last = std::move(a.last);
  w->batch.sequences = static_cast<int64_t>(S);
  w->batch.cu_new = a.cu.Data();
  w->batch.ids = a.ids.Data();
  w->batch.positions = a.pos.Data();
  w->logits = a.logits.IsEmpty() ? nullptr : a.logits.Data();
  w->cascade = a.cascade;
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// decode on the JS thread: no hand-off to a worker thread and back (on an H200 host those cost
// 0.17-0.28 ms a step, queued + resolved, against a ~1 ms device step), at the price of the JS
// thread waiting for the step. Same checks, results and errors (thrown) as decode.
Napi::Value KvHandle::DecodeSync(const Napi::CallbackInfo& info) {
  return decode_here(info, "decodeSync", true);
}

// decodeSync that does not wait for a CUDA step: it returns once the step is enqueued, so the
// host's work until the step's first read (the engine's bookkeeping, the sampler's arguments,
// copies and launches) runs while the device computes. Every later call on the device is queued
// behind the step; the first read of its results (logprobs, sample, logitsRows) waits for it,
// and a fault of the step surfaces there (named as possibly the step's) or at the next decode.
// No logits copy (that would wait). On a CPU model, the same as decodeSync.
Napi::Value KvHandle::DecodeLaunch(const Napi::CallbackInfo& info) {
  if (info.Length() > 1 && !info[1].IsUndefined())
    throw_type(info.Env(),
               "decodeLaunch: takes the batch alone (the logits stay where the model is); "
               "use decodeSync to copy them out");
  return decode_here(info, "decodeLaunch", false);
}

Napi::Value KvHandle::decode_here(const Napi::CallbackInfo& info, const char* fn, bool wait) {
  DecodeArgs a = decode_args(info, fn);
  const size_t S = a.seqs.ElementLength();
  step_rows_ = 0;
  if (!model_.cuda) host_logits_.assign(S * static_cast<size_t>(config().vocab), 0.0f);
  Qwen3DecodeBatch batch;
  batch.sequences = static_cast<int64_t>(S);
  batch.cu_new = a.cu.Data();
  batch.ids = a.ids.Data();
  batch.positions = a.pos.Data();
  batch.table = PageTable{batch.sequences, a.indptr.data(), a.indices.data(), a.last.data()};
  decoding_ = true;
  *model_.busy = true;
  double wait_ms = 0.0;
  const Status st = run_decode(batch, a.cascade, a.logits.IsEmpty() ? nullptr : a.logits.Data(),
                               cpu_runtime().context(), &wait_ms, wait);
  decoding_ = false;
  *model_.busy = false;
  host_.wait_ms += wait_ms;
  ++host_.calls;
  step_rows_ = st.is_ok() ? batch.sequences : 0;
  launched_ = st.is_ok() && !wait && model_.cuda;
  check(info.Env(), st);
  return info.Env().Undefined();
}

StepLogits KvHandle::step_logits(Napi::Env env, const char* fn) {
  idle(env, fn);
  StepLogits l;
  l.rows = step_rows_;
  l.vocab = config().vocab;
#if defined(NPR_WITH_CUDA)
  if (decoder_) {
    l.data = decoder_->device_logits();
    l.device = &model_.cuda->context();
    return l;
  }
#endif
  l.data = host_logits_.data();
  return l;
}

Napi::Value KvHandle::Logprobs(const Napi::CallbackInfo& info) {
  const StepRead r = read_logprobs(info, step_logits(info.Env(), "logprobs"));
  read_done(info.Env(), "logprobs", r.asked, r.status);
  return info.Env().Undefined();
}

Napi::Value KvHandle::Sample(const Napi::CallbackInfo& info) {
  const StepRead r = read_sample(info, step_logits(info.Env(), "sample"));
  read_done(info.Env(), "sample", r.asked, r.status);
  return info.Env().Undefined();
}

Napi::Value KvHandle::LogitsRows(const Napi::CallbackInfo& info) {
  const StepRead r = read_logits_rows(info, step_logits(info.Env(), "logitsRows"));
  read_done(info.Env(), "logitsRows", r.asked, r.status);
  return info.Env().Undefined();
}

}  // namespace

void register_kv(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeKv", KvHandle::Define(env));
}

}  // namespace npr::addon
