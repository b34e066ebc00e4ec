/*
 * worktable.h -- the work-id table: work id -> in-flight work item.
 *
 * An open-addressing hash table with linear probing and backward-shift
 * deletion, owned by the manager thread alone (no locking).
 */
#ifndef MPX_WORKTABLE_H
#define MPX_WORKTABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mpx__worktable {
  uint64_t *keys;
  void **vals; /* NULL marks an empty slot */
  size_t cap;  /* a power of two */
  size_t count;
} mpx__worktable;

int mpx__worktable_init(mpx__worktable *t);
void mpx__worktable_destroy(mpx__worktable *t);

/* Inserts id -> val (val not NULL). Returns 0, MPX_EEXIST if id is present,
 * MPX_EINVAL for a NULL val, MPX_ENOMEM. */
int mpx__worktable_put(mpx__worktable *t, uint64_t id, void *val);

/* Returns the value of id or NULL. */
void *mpx__worktable_get(const mpx__worktable *t, uint64_t id);

/* Removes id and returns its value, or NULL if absent. */
void *mpx__worktable_pop(mpx__worktable *t, uint64_t id);

/* Calls fn on every entry and empties the table. */
void mpx__worktable_drain(mpx__worktable *t,
                          void (*fn)(uint64_t id, void *val, void *arg),
                          void *arg);

#endif
