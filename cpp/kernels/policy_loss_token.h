// One token's policy-loss term, shared by the CPU loss (policy_loss.cpp) and its device twin
// (policy_loss.cu) so that both compute the same formulas (see policy_loss.h): the per-token
// loss, its derivative in lp, the ratio and KL terms for the metrics and which clip fired.
// Callers check finiteness and the mask first.
#pragma once

#include <cmath>

#include "core/host_device.h"
#include "kernels/policy_loss.h"

namespace npr {

struct PolicyTokenTerm {
  double loss = 0.0;   // l_t
  double grad = 0.0;   // dl_t / dlp_t
  double ratio = 1.0;  // r_t
  double kl = 0.0;     // lp_old - lp (clamped), 0 for PAPO
  bool eps_clipped = false, dual_clipped = false;
};

NPR_HOST_DEVICE inline PolicyTokenTerm policy_token_term(double a, float lp, float lp_old,
                                                         bool special, const PolicyLossParams& p) {
  PolicyTokenTerm t;
  if (p.kind != PolicyLossKind::kPpoClip) {  // PAPO: ratio 1 in value, gradient of log pi
    t.loss = -a;
    t.grad = -a;
    return t;
  }
  const double limit = static_cast<double>(p.log_ratio_limit);
  const double d = fmin(fmax(static_cast<double>(lp) - lp_old, -limit), limit);
  const double r = exp(d);
  t.ratio = r;
  t.kl = -d;
  const double pg1 = -a * r;
  double l = pg1, g = -a * r;
  if (!(special && p.exempt_special)) {
    const double lo = 1.0 - p.eps_low, hi = 1.0 + p.eps_high;
    const double pg2 = -a * fmin(fmax(r, lo), hi);
    if (pg2 > pg1) {  // the clipped branch is taken: constant in lp
      l = pg2;
      g = 0.0;
      t.eps_clipped = true;
    }
  }
  const double c = p.clip_c;
  if (c > 1.0 && a < 0.0 && -a * c < l) {
    l = -a * c;
    g = 0.0;
    t.dual_clipped = true;
  }
  t.loss = l;
  t.grad = g;
  return t;
}

}  // namespace npr
