// NumPy's and SciPy's OpenBLAS on fastgen's OpenMP team, through OpenBLAS's caller-managed
// threading hook (openblas_set_threads_callback_function, OpenBLAS >= 0.3.27).
//
// Each OpenBLAS copy otherwise keeps worker threads of its own that spin for about 0.1 s after
// every threaded call. On a small machine the spinning workers of one pool take the cores from
// the next one's threads: fastgen's kernels called right after NumPy's matmuls ran at about half
// speed (docs/performance.md, "one thread pool"). With the hook, every pool's work runs on the
// same OpenMP team, whose threads sleep after GOMP_SPINCOUNT spins.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastgen.h"
#include "fork_safe.h"

namespace fastgen {
namespace cpu {
namespace {

using BlasJob = void (*)(int thread_number, void* job, int job_data);

std::atomic<int64_t> g_calls{0}, g_calls_on_own_threads{0};

// OpenBLAS's threaded level-3 jobs wait for each other's packed panels, so all of a call's jobs
// must run at the same time: never one after another on one thread.
void run_on_own_threads(BlasJob job, int jobs, size_t job_size, char* job_array, int job_data) noexcept {
  g_calls_on_own_threads.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::thread> threads;
  try {
    threads.reserve(jobs - 1);
    for (int i = 1; i < jobs; ++i) threads.emplace_back(job, i, job_array + i * job_size, job_data);
  } catch (...) {
    // Running the jobs one after another could wait forever; stopping says why.
    std::fprintf(stderr, "fastgen: could not start a thread for OpenBLAS's jobs; aborting\n");
    std::abort();
  }
  job(0, job_array, job_data);
  for (auto& thread : threads) thread.join();
}

// All jobs on one OpenMP team of exactly `jobs` threads; false (and no job run) where OpenMP
// would give fewer: inside a parallel region, with dynamic teams or a lower thread limit.
bool run_on_team(BlasJob job, int jobs, size_t job_size, char* job_array, int job_data) noexcept {
#ifdef _OPENMP
  if (omp_in_parallel() || omp_get_dynamic() || omp_get_thread_limit() < jobs) return false;
  std::atomic<bool> full_team{true};
#pragma omp parallel num_threads(jobs)
  {
    if (omp_get_num_threads() == jobs) {
      const int i = omp_get_thread_num();
      job(i, job_array + i * job_size, job_data);
    } else {
      full_team.store(false, std::memory_order_relaxed);
    }
  }
  return full_team.load();
#else
  (void)job, (void)jobs, (void)job_size, (void)job_array, (void)job_data;
  return false;
#endif
}

}  // namespace

void run_blas_jobs(int /*sync: OpenBLAS always waits*/, BlasJob job, int jobs, size_t job_size, void* job_array,
                   int job_data) noexcept {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  char* const base = static_cast<char*>(job_array);
  if (jobs <= 1) {
    if (jobs == 1) job(0, base, job_data);
    return;
  }
  // A forked child's forking thread cannot start an OpenMP team (fork_safe.h).
  if (on_forked_thread() || !run_on_team(job, jobs, job_size, base, job_data))
    run_on_own_threads(job, jobs, job_size, base, job_data);
}

uintptr_t blas_jobs_callback_address() { return reinterpret_cast<uintptr_t>(&run_blas_jobs); }

BlasJobStats blas_jobs_stats() { return BlasJobStats{g_calls.load(), g_calls_on_own_threads.load()}; }

namespace {
struct RendezvousJobs {
  std::atomic<int> arrived{0};
  int jobs = 0;
  std::atomic<int> met{0};
};
struct RendezvousJob {
  RendezvousJobs* shared;
};

// A job that returns only once every job of its call has started (or after 10 s): the property
// OpenBLAS's level-3 jobs need.
void rendezvous(int /*thread_number*/, void* job, int /*job_data*/) {
  RendezvousJobs& shared = *static_cast<RendezvousJob*>(job)->shared;
  shared.arrived.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (shared.arrived.load() < shared.jobs) {
    if (std::chrono::steady_clock::now() > deadline) return;
    std::this_thread::yield();
  }
  shared.met.fetch_add(1);
}
}  // namespace

bool blas_jobs_meet(int jobs, bool inside_parallel_region) {
  RendezvousJobs shared;
  shared.jobs = jobs;
  std::vector<RendezvousJob> job_array(static_cast<size_t>(jobs), RendezvousJob{&shared});
  const auto call = [&] {
    run_blas_jobs(1, &rendezvous, jobs, sizeof(RendezvousJob), job_array.data(), 0);
  };
  if (inside_parallel_region) {
#pragma omp parallel num_threads(2)
    {
#pragma omp single
      call();
    }
  } else {
    call();
  }
  return shared.met.load() == jobs;
}

}  // namespace cpu
}  // namespace fastgen
