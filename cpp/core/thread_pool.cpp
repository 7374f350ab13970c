#include "core/thread_pool.h"

#include <sched.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define NPR_CPU_RELAX() _mm_pause()
#else
#define NPR_CPU_RELAX() std::this_thread::yield()
#endif

namespace npr {

namespace {
thread_local bool t_inside_task = false;
constexpr int kSpinIterations = 1 << 13;
}  // namespace

int ThreadPool::default_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

ThreadPool::ThreadPool(int n_threads) {
  int extra = n_threads > 1 ? n_threads - 1 : 0;
  workers_.reserve(extra);
  for (int w = 1; w <= extra; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stop_.store(true);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain(int worker) {
  t_inside_task = true;
  for (;;) {
    int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    thunk_(ctx_, task, worker);
  }
  t_inside_task = false;
}

void ThreadPool::run(int64_t n_tasks, Thunk thunk, void* ctx) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1 || t_inside_task) {
    bool outer = t_inside_task;
    t_inside_task = true;
    for (int64_t t = 0; t < n_tasks; ++t) thunk(ctx, t, 0);
    t_inside_task = outer;
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  n_tasks_ = n_tasks;
  thunk_ = thunk;
  ctx_ = ctx;
  next_task_.store(0, std::memory_order_relaxed);
  finished_workers_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_cv_.notify_all();
  drain(0);
  const int n_workers = static_cast<int>(workers_.size());
  int spins = 0;
  while (finished_workers_.load(std::memory_order_acquire) < n_workers) {
    if (++spins < kSpinIterations) {
      NPR_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker_loop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spins = 0; gen == seen && spins < kSpinIterations; ++spins) {
      if (stop_.load(std::memory_order_relaxed)) return;
      NPR_CPU_RELAX();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_cv_.wait(lock, [&] {
        return stop_.load() || generation_.load(std::memory_order_acquire) != seen;
      });
      if (stop_.load()) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    drain(worker);
    finished_workers_.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace npr
