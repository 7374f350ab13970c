// ThreadPool: a persistent pool of worker threads for the CPU kernels.
//
// The caller of parallel_for works as worker 0, so a pool of size N starts N - 1 threads.
// Workers spin briefly after a job before sleeping, because the model issues many short
// jobs back to back (one per layer op). One job runs at a time: concurrent callers from
// different threads are serialised, and parallel_for called from inside a task runs inline,
// so nested use cannot deadlock. Tasks must not throw; the pool does not catch for them.
// Sizing (NPR_THREADS or the core count) is decided by the caller, never read here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace npr {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(task, worker) for each task in [0, n_tasks); worker is in [0, size()).
  // Returns when every task has finished.
  template <typename F>
  void parallel_for(int64_t n_tasks, F&& fn) {
    auto thunk = [](void* ctx, int64_t task, int worker) { (*static_cast<F*>(ctx))(task, worker); };
    run(n_tasks, thunk, &fn);
  }

  // Number of threads to use when the user gave none: the cores this process may run on.
  static int default_threads();

 private:
  using Thunk = void (*)(void* ctx, int64_t task, int worker);
  void run(int64_t n_tasks, Thunk thunk, void* ctx);
  void worker_loop(int worker);
  void drain(int worker);

  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one job at a time
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> finished_workers_{0};
  std::atomic<bool> stop_{false};
  int64_t n_tasks_ = 0;
  Thunk thunk_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace npr
