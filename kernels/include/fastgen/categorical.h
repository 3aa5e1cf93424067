// Drawing one category from a row of logits: the Gumbel-max trick on the Philox stream.
// One definition for every backend; see philox.h for how elements map to counters.
//
//   index = argmax_c ( logit[c] / T + G[c] ),   G[c] = -log(-log(1 - u[c])) ~ Gumbel(0, 1)
//
// draws c with probability softmax(logit / T)[c]. Multiplying the key by T > 0 does not move
// the argmax, so the kernels compare
//
//   key[c] = logit[c] - T * log(E[c]),          E[c] = -log(1 - u[c]) ~ Exponential(1)
//
// which needs no division, cannot overflow for a small temperature, and tends to the plain
// argmax of the logits as T -> 0. u is the element's uniform on the open interval (0, 1)
// (uniform_open01, sampling.h), so 1 - u and E are positive normal numbers and the noise is
// bounded: |T log E| <= 17 T in float32 and 23 T in float64 (a key overflows only where T or the
// logit is near the float maximum). With u = 0 allowed, E = 0 gave an infinite key, and a
// category of probability e^-100 won about once in 2^24 / m draws.
// Ties between keys go to the lowest column (strict > while scanning the columns in order).
#pragma once
#include "common.h"
#include "math.h"
#include "sampling.h"

namespace fastgen {

// The Gumbel-max key of one column from its logit, the temperature (> 0) and its uniform on (0, 1).
template <typename T> FG_HD T gumbel_key(T logit, T temperature, T u) {
  const T e = -fg_log(T(1) - u);  // Exponential(1), positive
  return fg_fma(-temperature, fg_log(e), logit);
}

// Whether column c (value x) belongs to the top k of its row, given the k-th largest value
// `kth` of the row and `ties_left` (how many columns equal to kth are still admitted, scanning
// the columns in order: the top-k set is the k largest, ties broken towards lower columns).
template <typename T> FG_HD bool in_top_k(T x, T kth, int64_t& ties_left) {
  if (x > kth) return true;
  if (x == kth && ties_left > 0) {
    --ties_left;
    return true;
  }
  return false;
}

}  // namespace fastgen
