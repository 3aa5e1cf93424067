// How a binding runs a kernel: without the GIL, and where an OpenMP region can start (fork_safe.h).
#pragma once
#include <pybind11/pybind11.h>

#include <utility>

#include "fork_safe.h"

namespace fastgen {
namespace cpu {

template <typename F> auto run_released(F&& kernel) -> decltype(kernel()) {
  pybind11::gil_scoped_release nogil;
  return run_fork_safe(std::forward<F>(kernel));
}

}  // namespace cpu
}  // namespace fastgen
