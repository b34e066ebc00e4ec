/*
 * worktable.c -- the work-id table of in-flight work items (see
 * worktable.h): linear probing over a power-of-two array, kept under 50%
 * full, with backward-shift deletion so that no tombstones accumulate.
 */
#include <stdlib.h>

#include "mpx_errors.h"
#include "util.h"
#include "worktable.h"

/* Spreads sequential ids over the table (splitmix64 finaliser). */
static size_t slot_of(uint64_t id, size_t cap) {
  id ^= id >> 31;
  id *= 0x7fb5d329728ea185ULL;
  id ^= id >> 27;
  id *= 0x81dadef4bc2dd44dULL;
  id ^= id >> 33;
  return (size_t)id & (cap - 1);
}

static int alloc_arrays(mpx__worktable *t, size_t cap) {
  t->keys = calloc(cap, sizeof *t->keys);
  t->vals = calloc(cap, sizeof *t->vals);
  if (!t->keys || !t->vals) {
    free(t->keys);
    free(t->vals);
    return mpx__fail(MPX_ENOMEM, "out of memory for a work table of %zu slots",
                     cap);
  }
  t->cap = cap;
  t->count = 0;
  return 0;
}

int mpx__worktable_init(mpx__worktable *t) {
  return alloc_arrays(t, 64);
}

void mpx__worktable_destroy(mpx__worktable *t) {
  free(t->keys);
  free(t->vals);
  t->keys = NULL;
  t->vals = NULL;
  t->cap = t->count = 0;
}

/* Places id at its probe position; the caller guarantees room. */
static void place(mpx__worktable *t, uint64_t id, void *val) {
  size_t i = slot_of(id, t->cap);
  while (t->vals[i])
    i = (i + 1) & (t->cap - 1);
  t->keys[i] = id;
  t->vals[i] = val;
  t->count++;
}

/* Doubles the table and reinserts every entry. */
static int grow(mpx__worktable *t) {
  mpx__worktable old = *t;
  if (alloc_arrays(t, old.cap * 2) != 0) {
    *t = old;
    return MPX_ENOMEM; /* alloc_arrays said why */
  }
  for (size_t i = 0; i < old.cap; i++)
    if (old.vals[i])
      place(t, old.keys[i], old.vals[i]);
  free(old.keys);
  free(old.vals);
  return 0;
}

/* Finds the slot of id, or returns cap when absent. */
static size_t find(const mpx__worktable *t, uint64_t id) {
  size_t i = slot_of(id, t->cap);
  while (t->vals[i]) {
    if (t->keys[i] == id)
      return i;
    i = (i + 1) & (t->cap - 1);
  }
  return t->cap;
}

int mpx__worktable_put(mpx__worktable *t, uint64_t id, void *val) {
  if (!val)
    return mpx__fail(MPX_EINVAL, "work id %llu with a NULL value",
                     (unsigned long long)id);
  if (find(t, id) != t->cap)
    return mpx__fail(MPX_EEXIST, "work id %llu is already in flight",
                     (unsigned long long)id);
  if (2 * (t->count + 1) > t->cap && grow(t) != 0)
    return MPX_ENOMEM; /* alloc_arrays said why */
  place(t, id, val);
  return 0;
}

void *mpx__worktable_get(const mpx__worktable *t, uint64_t id) {
  size_t i = find(t, id);
  return i == t->cap ? NULL : t->vals[i];
}

/* Removes the slot and shifts later members of its probe run back. */
void *mpx__worktable_pop(mpx__worktable *t, uint64_t id) {
  size_t i = find(t, id);
  if (i == t->cap)
    return NULL;
  void *val = t->vals[i];
  size_t mask = t->cap - 1, hole = i, j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!t->vals[j])
      break;
    size_t home = slot_of(t->keys[j], t->cap);
    /* Move j into the hole unless its home lies cyclically in (hole, j]. */
    int stays =
        hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      t->keys[hole] = t->keys[j];
      t->vals[hole] = t->vals[j];
      hole = j;
    }
  }
  t->vals[hole] = NULL;
  t->count--;
  return val;
}

void mpx__worktable_drain(mpx__worktable *t,
                          void (*fn)(uint64_t id, void *val, void *arg),
                          void *arg) {
  for (size_t i = 0; i < t->cap; i++) {
    if (t->vals[i]) {
      void *v = t->vals[i];
      t->vals[i] = NULL;
      if (fn)
        fn(t->keys[i], v, arg);
    }
  }
  t->count = 0;
}
