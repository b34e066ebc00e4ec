/*
 * registry.h -- the process-wide table of tasks registered by name.
 *
 * Task ids are positions in registration order, so two ranks that
 * registered the same names in the same order agree on every id.
 */
#ifndef MPX_REGISTRY_H
#define MPX_REGISTRY_H

#include "mpx.h"

/* Returns the id of the task called name, or MPX_ENOTASK. Thread-safe
 * while no registration happens (registration is refused while an
 * executor is live). */
int mpx__registry_lookup(const char *name);

/* Number of registered tasks. */
uint32_t mpx__registry_count(void);

/* Function and name of task id, or NULL when id is out of range. */
mpx_task_fn mpx__registry_fn(uint32_t id);
const char *mpx__registry_name(uint32_t id);

/* Serialises the table as the names in id order, each followed by '\n'.
 * Ownership: the caller frees *out (never NULL on success, even when the
 * table is empty). Returns 0 or MPX_ENOMEM. */
int mpx__registry_serialize(char **out, size_t *len);

/* Compares two serialised tables (root's and one other rank's). Returns 0
 * when equal, else MPX_EMISMATCH with a sentence naming the first
 * difference written to msg (cap bytes, NUL-terminated), for example
 * "rank 2 registered 'cube' as task 1 where rank 0 registered 'square'" or
 * "rank 3 lacks task 2 'fib' registered on rank 0". */
int mpx__registry_compare(const char *root_tab, size_t root_len, int root,
                          const char *other_tab, size_t other_len, int other,
                          char *msg, size_t cap);

/* Counts live executors; registration fails with MPX_EBUSY while > 0. */
void mpx__registry_hold(int delta);

#endif
