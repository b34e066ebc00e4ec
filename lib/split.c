/*
 * split.c -- numpy.array_split's rule for cutting n items into k parts:
 * the first n % k parts get one item more than the others.
 */
#include "mpx.h"
#include "util.h"

int mpx_array_split(uint64_t n, uint64_t k, uint64_t i, uint64_t *start,
                    uint64_t *stop) {
  if (k == 0 || i >= k || !start || !stop)
    return mpx__fail(MPX_EINVAL,
                     "mpx_array_split: need k > 0, i < k and outputs "
                     "(n %llu, k %llu, i %llu)",
                     (unsigned long long)n, (unsigned long long)k,
                     (unsigned long long)i);
  uint64_t q = n / k, r = n % k;
  /* Parts before i: i of them hold q, min(i, r) of them one more. */
  *start = i * q + (i < r ? i : r);
  *stop = *start + q + (i < r ? 1 : 0);
  return 0;
}
