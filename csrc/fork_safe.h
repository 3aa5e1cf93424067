// Running kernels in a forked child (multiprocessing's default start method on Linux, Pool and
// joblib's multiprocessing backend).
//
// libgomp keeps its team of worker threads in the thread-local state of the thread that started
// a parallel region, and it installs no fork handler. A child has only the thread that called
// fork(); that thread's state still lists the parent's workers, so its first parallel region
// waits forever for threads that were never copied. Any other thread starts with no team and
// builds a fresh one. So in a child, a kernel called from the thread that forked runs on a
// helper thread the child starts (and keeps) for the purpose; everywhere else it runs in place.
#pragma once
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace fastgen {
namespace cpu {

// True in a forked child, on the thread that called fork(): OpenMP regions must not start here.
bool on_forked_thread() noexcept;

// Runs work on the child's helper thread and waits for it; rethrows what work threw.
void run_on_helper_thread(const std::function<void()>& work);

// Runs kernel() where an OpenMP region can start: in place, or on the helper thread.
template <typename F> auto run_fork_safe(F&& kernel) -> decltype(kernel()) {
  if (!on_forked_thread()) return kernel();
  if constexpr (std::is_void_v<decltype(kernel())>) {
    run_on_helper_thread([&] { kernel(); });
  } else {
    std::optional<decltype(kernel())> result;
    run_on_helper_thread([&] { result.emplace(kernel()); });
    return std::move(*result);
  }
}

}  // namespace cpu
}  // namespace fastgen
