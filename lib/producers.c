/*
 * producers.c -- the stock producers: the parts of a range by numpy's
 * array_split rule (the seeds' `executor.map(f, np.array_split(xs, k))`),
 * and the elements of one array of fixed-size items (`executor.map(f, xs)`
 * without an args[]/lens[] pair). Both are plain mpx_producer functions,
 * so maps and jobs take them alike.
 */
#include <stdint.h>

#include "producers.h"
#include "util.h"

/* Checks a split's bounds and count (see producers.h). */
int mpx__split_check(const mpx_split *s, const char *call) {
  if (!s)
    return mpx__fail(MPX_EINVAL, "%s: NULL split", call);
  if (s->hi < s->lo || s->k == 0)
    return mpx__fail(
        MPX_EINVAL, "%s: need lo <= hi and k >= 1 (lo %lld, hi %lld, k %llu)",
        call, (long long)s->lo, (long long)s->hi, (unsigned long long)s->k);
  return 0;
}

/* Produces part index of [lo, hi) cut into k parts into s->part. */
int mpx_split_producer(void *arg, uint64_t index, const void **data,
                       size_t *len) {
  mpx_split *s = arg;
  int rc = mpx__split_check(s, "mpx_split_producer");
  if (rc)
    return rc;
  if (!data || !len)
    return mpx__fail(MPX_EINVAL, "mpx_split_producer: NULL data or len");
  if (index >= s->k)
    return 0;
  uint64_t a, b;
  /* hi - lo fits a uint64 for any lo <= hi, and so do the sums below. */
  mpx_array_split((uint64_t)s->hi - (uint64_t)s->lo, s->k, index, &a, &b);
  s->part.start = (int64_t)((uint64_t)s->lo + a);
  s->part.stop = (int64_t)((uint64_t)s->lo + b);
  *data = &s->part;
  *len = sizeof s->part;
  return 1;
}

/* Checks an array's base, size and extent (see producers.h). */
int mpx__elements_check(const mpx_elements *e, const char *call) {
  int rc = 0;
  if (!e || (e->n && (!e->base || e->size == 0)))
    rc = MPX_EINVAL;
  else if (e->n &&
           (e->n > SIZE_MAX / e->size ||
            (uintptr_t)e->base > UINTPTR_MAX - (uintptr_t)(e->n * e->size)))
    rc = MPX_E2BIG;
  if (rc == 0 || !call)
    return rc;
  if (!e)
    return mpx__fail(rc, "%s: NULL elements", call);
  if (rc == MPX_EINVAL)
    return mpx__fail(rc,
                     "%s: %llu elements need a base and a size > 0 (base %p, "
                     "size %zu)",
                     call, (unsigned long long)e->n, e->base, e->size);
  return mpx__fail(rc,
                   "%s: %llu elements of %zu bytes do not fit the address "
                   "space",
                   call, (unsigned long long)e->n, e->size);
}

/* Produces element index: the size bytes at base + index * size, lent
 * without a copy (the map copies it into its chunk). */
int mpx_elements_producer(void *arg, uint64_t index, const void **data,
                          size_t *len) {
  const mpx_elements *e = arg;
  int rc = mpx__elements_check(e, "mpx_elements_producer");
  if (rc)
    return rc;
  if (!data || !len)
    return mpx__fail(MPX_EINVAL, "mpx_elements_producer: NULL data or len");
  if (index >= e->n)
    return 0;
  *data = (const char *)e->base + (size_t)index * e->size;
  *len = e->size;
  return 1;
}
