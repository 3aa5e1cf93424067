// The helper thread behind run_fork_safe (fork_safe.h).
#include "fork_safe.h"

#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <condition_variable>
#include <mutex>
#include <thread>

namespace fastgen {
namespace cpu {
namespace {

// One per child process, used only by the thread that forked (one call at a time).
struct HelperThread {
  std::mutex mutex;
  std::condition_variable changed;
  const std::function<void()>* work = nullptr;  // set by the caller, cleared by the helper
  std::exception_ptr error;
  std::thread thread;

  HelperThread() : thread([this] { serve(); }) { thread.detach(); }

  void serve() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      changed.wait(lock, [this] { return work != nullptr; });
      try {
        (*work)();
      } catch (...) {
        error = std::current_exception();
      }
      work = nullptr;
      changed.notify_all();
    }
  }

  void run(const std::function<void()>& task) {
    std::unique_lock<std::mutex> lock(mutex);
    work = &task;
    error = nullptr;
    changed.notify_all();
    changed.wait(lock, [this] { return work == nullptr; });
    if (error) std::rethrow_exception(error);
  }
};

// Written only by the fork handler, which runs in the child while it has a single thread.
pthread_t forking_thread;
bool forked = false;
HelperThread* helper = nullptr;  // a parent's helper is not copied into a child: never freed, never reused

void after_fork_in_child() {
  forking_thread = pthread_self();
  forked = true;
  helper = nullptr;
}

[[maybe_unused]] const int registered = pthread_atfork(nullptr, nullptr, after_fork_in_child);

}  // namespace

bool on_forked_thread() noexcept { return forked && pthread_equal(pthread_self(), forking_thread); }

void run_on_helper_thread(const std::function<void()>& work) {
  if (helper == nullptr) helper = new HelperThread;
#ifdef _OPENMP
  // The thread count is per thread in OpenMP: the caller's (omp_set_num_threads, threadpoolctl)
  // must hold on the helper, or every worker of a fork Pool would take all the cores.
  const int threads = omp_get_max_threads();
  helper->run([&] {
    omp_set_num_threads(threads);
    work();
  });
#else
  helper->run(work);
#endif
}

}  // namespace cpu
}  // namespace fastgen
