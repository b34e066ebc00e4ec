/*
 * registry.c -- the process-wide task table: names registered with
 * mpx_register(), looked up by name on the root and by id on the workers,
 * and compared across ranks when an executor is created.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "util.h"

typedef struct entry {
  char name[MPX_TASK_NAME_MAX + 1];
  mpx_task_fn fn;
} entry;

static entry *tab;
static uint32_t ntab;
static size_t captab;
static atomic_int live_executors;

/* Registers fn as name after checking the name and the table's state. */
int mpx_register(const char *name, mpx_task_fn fn) {
  if (!name || !*name || !fn)
    return mpx__fail(MPX_EINVAL, "mpx_register: name and fn are required");
  if (strlen(name) > MPX_TASK_NAME_MAX)
    return mpx__fail(MPX_E2BIG,
                     "mpx_register: task name '%.20s...' is "
                     "longer than %d bytes",
                     name, MPX_TASK_NAME_MAX);
  if (strchr(name, '\n'))
    return mpx__fail(MPX_EINVAL, "mpx_register: task name contains a newline");
  if (atomic_load(&live_executors) > 0)
    return mpx__fail(MPX_EBUSY, "mpx_register: an executor is live; register "
                                "tasks before mpx_executor_create");
  if (mpx__registry_lookup(name) >= 0)
    return mpx__fail(MPX_EEXIST, "mpx_register: task '%s' already registered",
                     name);
  if (mpx__grow(&tab, &captab, (size_t)ntab + 1, sizeof *tab, 16) != 0)
    return mpx__fail(MPX_ENOMEM, "mpx_register: out of memory");
  snprintf(tab[ntab].name, sizeof tab[ntab].name, "%s", name);
  tab[ntab].fn = fn;
  ntab++;
  return 0;
}

/* Empties the table unless an executor is live. */
int mpx_unregister_all(void) {
  if (atomic_load(&live_executors) > 0)
    return mpx__fail(MPX_EBUSY, "mpx_unregister_all: an executor is live");
  free(tab);
  tab = NULL;
  ntab = captab = 0;
  return 0;
}

/* Linear search: tables hold a handful of names, and a short scan of
 * contiguous entries beats hashing at that size. */
int mpx__registry_lookup(const char *name) {
  if (!name)
    return MPX_ENOTASK;
  for (uint32_t i = 0; i < ntab; i++)
    if (strcmp(tab[i].name, name) == 0)
      return (int)i;
  return MPX_ENOTASK;
}

uint32_t mpx__registry_count(void) {
  return ntab;
}

mpx_task_fn mpx__registry_fn(uint32_t id) {
  return id < ntab ? tab[id].fn : NULL;
}

const char *mpx__registry_name(uint32_t id) {
  return id < ntab ? tab[id].name : NULL;
}

/* Writes the names, each followed by a newline, into a new buffer. */
int mpx__registry_serialize(char **out, size_t *len) {
  size_t n = 0;
  for (uint32_t i = 0; i < ntab; i++)
    n += strlen(tab[i].name) + 1;
  char *b = malloc(n + 1);
  if (!b)
    return mpx__fail(MPX_ENOMEM,
                     "out of memory serialising the task table (%zu bytes)",
                     n + 1);
  size_t p = 0;
  for (uint32_t i = 0; i < ntab; i++) {
    size_t l = strlen(tab[i].name);
    memcpy(b + p, tab[i].name, l);
    b[p + l] = '\n';
    p += l + 1;
  }
  b[p] = 0;
  *out = b;
  *len = n;
  return 0;
}

/* Reads the name at *pos of a serialised table into name (at most cap-1
 * bytes) and advances; returns 0 at the end of the table. */
static int next_name(const char *tab_, size_t len, size_t *pos, char *name,
                     size_t cap) {
  if (*pos >= len)
    return 0;
  size_t s = *pos, e = s;
  while (e < len && tab_[e] != '\n')
    e++;
  size_t l = e - s < cap - 1 ? e - s : cap - 1;
  memcpy(name, tab_ + s, l);
  name[l] = 0;
  *pos = e + 1;
  return 1;
}

/* Walks both tables in step and describes the first position where they
 * differ. */
int mpx__registry_compare(const char *root_tab, size_t root_len, int root,
                          const char *other_tab, size_t other_len, int other,
                          char *msg, size_t cap) {
  size_t pr = 0, po = 0;
  char a[MPX_TASK_NAME_MAX + 2], b[MPX_TASK_NAME_MAX + 2];
  for (unsigned id = 0;; id++) {
    int ha = next_name(root_tab, root_len, &pr, a, sizeof a);
    int hb = next_name(other_tab, other_len, &po, b, sizeof b);
    if (!ha && !hb)
      return 0;
    if (ha && !hb) {
      snprintf(msg, cap,
               "rank %d lacks task %u '%s' registered on rank %d (it "
               "registered %u tasks)",
               other, id, a, root, id);
      return MPX_EMISMATCH;
    }
    if (!ha && hb) {
      snprintf(msg, cap,
               "rank %d registered an extra task %u '%s' that rank %d lacks "
               "(it registered %u tasks)",
               other, id, b, root, id);
      return MPX_EMISMATCH;
    }
    if (strcmp(a, b) != 0) {
      snprintf(msg, cap,
               "rank %d registered '%s' as task %u where rank %d registered "
               "'%s'",
               other, b, id, root, a);
      return MPX_EMISMATCH;
    }
  }
}

/* Tracks live executors so that registration can be refused meanwhile. */
void mpx__registry_hold(int delta) {
  atomic_fetch_add(&live_executors, delta);
}
