/*
 * map.c -- Executor.map and Pool.imap_unordered over the executor: inputs
 * are pulled from a producer only as a bounded window frees, bundled
 * `chunksize` at a time into one future (a chunk, run back to back by one
 * worker, see task.h), and yielded in input order or completion order.
 *
 * The window counts inputs submitted and not yet yielded, so the root
 * holds at most `window` inputs' arguments and results however long the
 * map is. Ordered maps wait on the oldest chunk's future; unordered maps
 * get each chunk from a done-callback (on the manager thread) through a
 * small ready queue. A failed input is yielded at its position with its
 * status and message, and the map goes on; a chunk that never ran
 * (cancelled, broken pool) yields each of its inputs with that status.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "future.h"
#include "map.h"
#include "producers.h"
#include "registry.h"
#include "util.h"

/* The ready queue of an unordered map, shared with done-callbacks that may
 * outlive the map. */
typedef struct mpx__map_rq {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs; /* the map's + one per chunk whose callback has not run */
  int dead; /* the map is gone: callbacks only release */
  mpx__chunk *head, *tail;
} mpx__map_rq;

/* Where inputs come from: a producer, args[]/lens[], or one array of
 * fixed-size elements (copied a chunk at a time, no call per input). */
enum src_kind { SRC_PRODUCER, SRC_ARRAY, SRC_ELEMENTS };

struct mpx_map {
  mpx_executor *ex;
  uint32_t task_id;
  mpx_map_options o;
  uint64_t window;
  enum src_kind src;
  mpx_producer fn;
  void *parg;
  const void *const *args;
  const size_t *lens;
  mpx_split split;    /* the producer's state for mpx_map_create_range() */
  mpx_elements elems; /* ... for mpx_map_create_array() */
  uint64_t next_index, end_index; /* next to produce; end (or UNKNOWN) */
  int producing;                  /* inputs may remain */
  int end_rc;                     /* why producing stopped early, or 0 */
  char end_msg[512];              /* its message, reported with it */
  int end_reported;
  uint64_t outstanding; /* inputs submitted, not yet yielded */
  uint64_t submitted, yielded;
  mpx__chunk *head, *tail; /* submitted, not yet taken (submission order) */
  mpx__chunk *cur;         /* the chunk being yielded */
  uint64_t cur_pos;        /* next input of cur to yield */
  mpx__map_rq *rq;         /* unordered only */
};

static const char cancelled_msg[] = "cancelled before it ran";

/* ---- chunks ------------------------------------------------------------- */

void mpx__chunk_free(mpx__chunk *c) {
  if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  mpx_future_destroy(&c->fut);
  for (uint64_t j = 0; c->texts && j < c->count; j++)
    free(c->texts[j]);
  free(c->texts);
  free(c->oc);
  free(c);
}

/* Whether a failure is a task process's death (isolation), whose text the
 * worker could not give the input's index. */
static int process_death(int st) {
  return st == MPX_ECRASHED || st == MPX_EEXIT || st == MPX_ETIMELIMIT ||
         st == MPX_EMEMLIMIT;
}

/* Writes "input <index>: " before each such failure's text (the text
 * stays as it was when there is no memory for it). */
static void name_inputs(mpx__chunk *c) {
  for (uint64_t j = 0; j < c->count; j++) {
    if (!process_death(c->oc[j].status))
      continue;
    if (!c->texts && !(c->texts = calloc((size_t)c->count, sizeof *c->texts)))
      return;
    const char *t = c->oc[j].data;
    int n = snprintf(NULL, 0, "input %llu: %s",
                     (unsigned long long)(c->first + j), t);
    if ((c->texts[j] = malloc((size_t)n + 1)) != NULL)
      snprintf(c->texts[j], (size_t)n + 1, "input %llu: %s",
               (unsigned long long)(c->first + j), t);
  }
}

/* Reads the outcome of a done chunk's future into c->status / c->oc. */
static void chunk_parse(mpx__chunk *c) {
  mpx__sim_charge(MPX__SIM_MAP, (double)c->count); /* (under SMPI) */
  c->worker = mpx_future_worker(c->fut); /* once, not a lock per input */
  c->status = mpx_future_exception(c->fut, 0);
  if (c->status != 0)
    return;
  const void *res = NULL;
  size_t len = 0;
  mpx_future_result(c->fut, 0, &res, &len);
  c->oc = malloc((size_t)c->count * sizeof *c->oc);
  if (!c->oc)
    c->status = MPX_ENOMEM;
  else if (mpx__chunk_result_parse(res, len, c->count, c->oc) != 0)
    c->status = MPX_EPROTO;
  if (c->status != 0) {
    free(c->oc);
    c->oc = NULL;
    return;
  }
  name_inputs(c);
}

void mpx__chunk_item(const mpx__chunk *c, uint64_t j, mpx_map_item *it) {
  memset(it, 0, sizeof *it);
  it->index = c->first + j;
  it->worker = c->worker;
  if (c->status == 0) {
    it->status = c->oc[j].status;
    if (it->status == 0) {
      it->data = c->oc[j].data;
      it->len = c->oc[j].len;
    } else {
      it->error =
          c->texts && c->texts[j] ? c->texts[j] : (const char *)c->oc[j].data;
    }
    return;
  }
  it->status = c->status;
  if (c->status == MPX_ECANCELED)
    it->error = cancelled_msg;
  else if (c->status == MPX_ENOMEM)
    it->error = "out of memory on the root reading the chunk's results";
  else if (c->status == MPX_EPROTO)
    it->error = "the chunk's result is malformed";
  else
    it->error = mpx_future_error(c->fut);
  if (!it->error)
    it->error = mpx_strerror(c->status);
}

/* ---- the ready queue (unordered maps) ------------------------------------ */

static void rq_unref_locked(mpx__map_rq *rq) {
  int last = --rq->refs == 0;
  pthread_mutex_unlock(&rq->mu);
  if (last) {
    pthread_mutex_destroy(&rq->mu);
    pthread_cond_destroy(&rq->cv);
    free(rq);
  }
}

/* Done-callback of an unordered map's chunk: queue it as ready. */
static void on_chunk_done(mpx_future *f, void *arg) {
  (void)f;
  mpx__chunk *c = arg;
  mpx__map_rq *rq = c->rq;
  pthread_mutex_lock(&rq->mu);
  if (!rq->dead) {
    c->next_done = NULL;
    if (rq->tail)
      rq->tail->next_done = c;
    else
      rq->head = c;
    rq->tail = c;
    pthread_cond_signal(&rq->cv);
  }
  rq_unref_locked(rq);
  mpx__chunk_free(c); /* the callback's reference */
}

/* ---- producing ------------------------------------------------------------
 */

/* Produces input index into *data / *len. Returns 1, 0 at the end, or a
 * negative code. */
static int produce(mpx_map *m, uint64_t index, const void **data, size_t *len) {
  if (m->end_index != MPX_MAP_UNKNOWN && index >= m->end_index)
    return 0;
  switch (m->src) {
  case SRC_ARRAY:
    *data = m->args[index];
    *len = m->lens[index];
    if (*len && !*data)
      return mpx__fail(MPX_EINVAL, "map input %llu is NULL with length %zu",
                       (unsigned long long)index, *len);
    return 1;
  default: {
    mpx__clear_error();
    int rc = m->fn(m->parg, index, data, len);
    if (rc > 0 && *len && !*data)
      return mpx__fail(MPX_EINVAL,
                       "the producer gave input %llu as NULL with length %zu",
                       (unsigned long long)index, *len);
    if (rc < 0 && !mpx_last_error()[0])
      mpx__fail(rc, "the producer failed at input %llu",
                (unsigned long long)index);
    return rc > 0 ? 1 : rc;
  }
  }
}

/* Stops producing with rc (0: the inputs ended), keeping the message of a
 * failure to report once every submitted input has been yielded. */
static void end_producing(mpx_map *m, int rc) {
  m->producing = 0;
  m->end_rc = rc;
  if (rc < 0)
    snprintf(m->end_msg, sizeof m->end_msg, "%s", mpx_last_error());
}

/* Submits chunks while the window has room and inputs remain. */
static void refill(mpx_map *m) {
  while (m->producing && m->outstanding + m->o.chunksize <= m->window) {
    mpx__chunkbuf cb = {0};
    uint64_t first = m->next_index;
    int rc = 1;
    if (m->src == SRC_ELEMENTS) {
      uint64_t k =
          m->next_index < m->end_index ? m->end_index - m->next_index : 0;
      if (k > m->o.chunksize)
        k = m->o.chunksize;
      const char *base = m->elems.base;
      if (k && mpx__chunkbuf_add_fixed(
                   &cb, base + (size_t)m->next_index * m->elems.size, k,
                   m->elems.size) != 0)
        rc = mpx__fail(MPX_ENOMEM, "out of memory for inputs %llu to %llu",
                       (unsigned long long)m->next_index,
                       (unsigned long long)(m->next_index + k - 1));
      else
        m->next_index += k;
      if (rc > 0 && m->next_index >= m->end_index)
        rc = 0;
    }
    while (m->src != SRC_ELEMENTS && cb.count < m->o.chunksize) {
      const void *d = NULL;
      size_t l = 0;
      rc = produce(m, m->next_index, &d, &l);
      if (rc <= 0)
        break;
      if (mpx__chunkbuf_add(&cb, d, l) != 0) {
        rc = mpx__fail(MPX_ENOMEM, "out of memory for input %llu",
                       (unsigned long long)m->next_index);
        break;
      }
      if (cb.count == 1)
        mpx__chunkbuf_reserve(&cb, m->o.chunksize, l);
      m->next_index++;
    }
    if (rc <= 0)
      end_producing(m, rc);
    size_t len;
    uint64_t count = cb.count;
    mpx__sim_charge(m->src == SRC_ELEMENTS ? MPX__SIM_PACK_FIXED
                                           : MPX__SIM_PACK,
                    (double)count); /* (under SMPI) */
    void *arg = mpx__chunkbuf_finish(&cb, &len);
    if (!arg)
      return;
    mpx__chunk *c = calloc(1, sizeof *c);
    if (!c) {
      free(arg);
      end_producing(m, mpx__fail(MPX_ENOMEM, "out of memory for a chunk"));
      return;
    }
    c->first = first;
    c->count = count;
    atomic_init(&c->refs, 1);
    int src = mpx__submit_owned(m->ex, m->task_id | MPX__TASK_CHUNK, arg, len,
                                m->o.retries, m->o.task_timeout, &c->fut);
    if (src != 0) {
      free(c);
      end_producing(m, src);
      m->next_index = first; /* those inputs were never submitted */
      return;
    }
    if (m->rq) {
      atomic_fetch_add(&c->refs, 1);
      c->rq = m->rq;
      pthread_mutex_lock(&m->rq->mu);
      m->rq->refs++;
      pthread_mutex_unlock(&m->rq->mu);
      if (mpx_future_add_done_callback(c->fut, on_chunk_done, c) != 0) {
        /* No memory for the callback: do its work once the chunk is
         * done, so that it still yields (cancelled if it was pending). */
        mpx_future_cancel(c->fut);
        mpx_future_wait(c->fut, MPX_FOREVER);
        on_chunk_done(c->fut, c);
      }
    }
    if (m->tail)
      m->tail->next = c;
    else
      m->head = c;
    m->tail = c;
    m->outstanding += count;
    m->submitted += count;
  }
}

/* ---- creation -------------------------------------------------------------
 */

void mpx_map_options_init(mpx_map_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->chunksize = 1;
  o->retries = -1;
  o->task_timeout = -1;
}

uint64_t mpx__map_window(const mpx_executor *ex, const mpx_map_options *o) {
  uint64_t per = 8u * (uint64_t)mpx_executor_workers(ex) *
                 (uint64_t)mpx__executor_prefetch(ex);
  if (per < 256)
    per = 256;
  uint64_t w = o->window ? o->window : o->chunksize * per;
  return w < o->chunksize ? o->chunksize : w;
}

/* Allocates a map of the task name on ex after checking the arguments
 * every map creation shares; messages name the public call. */
static int map_create(mpx_executor *ex, const char *name,
                      const mpx_map_options *o, mpx_map **out, mpx_map **mp,
                      const char *call) {
  *mp = NULL;
  if (out)
    *out = NULL;
  if (!ex || !name || !out)
    return mpx__fail(MPX_EINVAL, "%s: NULL executor, task name or output",
                     call);
  mpx_map_options def;
  mpx_map_options_init(&def);
  if (!o)
    o = &def;
  if (o->chunksize == 0)
    return mpx__fail(MPX_EINVAL, "%s: chunksize must be at least 1", call);
  if (o->retries < -1 || !(o->task_timeout >= -1) || o->task_timeout > 2e6)
    return mpx__fail(MPX_EINVAL,
                     "%s: retries must be >= -1 and task_timeout -1, 0 or "
                     "positive (at most 2e6 s)",
                     call);
  int tid = mpx__registry_lookup(name);
  if (tid < 0)
    return mpx__fail(MPX_ENOTASK, "%s: no task named '%s' is registered", call,
                     name);
  mpx_map *m = calloc(1, sizeof *m);
  if (!m)
    return mpx__fail(MPX_ENOMEM, "%s: out of memory", call);
  m->ex = ex;
  m->task_id = (uint32_t)tid;
  m->o = *o;
  m->window = mpx__map_window(ex, o);
  m->next_index = o->first;
  m->producing = 1;
  if (o->unordered) {
    m->rq = calloc(1, sizeof *m->rq);
    if (!m->rq) {
      free(m);
      return mpx__fail(MPX_ENOMEM, "%s: out of memory", call);
    }
    pthread_mutex_init(&m->rq->mu, NULL);
    mpx__cond_init(&m->rq->cv);
    m->rq->refs = 1;
  }
  *mp = m;
  return 0;
}

/* Submits the first window; fails the creation (the message naming call)
 * if nothing could be submitted because the executor is shut down or
 * broken, or memory ran out. */
static int map_start(mpx_map *m, mpx_map **out, const char *call) {
  refill(m);
  if (m->submitted == 0 &&
      (m->end_rc == MPX_ESHUTDOWN || m->end_rc == MPX_EBROKEN ||
       m->end_rc == MPX_ENOMEM)) {
    int rc = m->end_rc;
    char msg[sizeof m->end_msg];
    snprintf(msg, sizeof msg, "%s", m->end_msg);
    mpx_map_destroy(&m);
    return mpx__fail(rc, "%s: %s", call, msg);
  }
  *out = m;
  return 0;
}

/* Maps the task over an array of n inputs. */
int mpx_map_create(mpx_executor *ex, const char *name, const void *const *args,
                   const size_t *lens, uint64_t n, const mpx_map_options *o,
                   mpx_map **out) {
  mpx_map *m;
  if (n && (!args || !lens)) {
    if (out)
      *out = NULL;
    return mpx__fail(MPX_EINVAL, "mpx_map_create: NULL inputs for n = %llu",
                     (unsigned long long)n);
  }
  int rc = map_create(ex, name, o, out, &m, "mpx_map_create");
  if (rc)
    return rc;
  m->src = SRC_ARRAY;
  m->args = args;
  m->lens = lens;
  m->end_index = n;
  return map_start(m, out, "mpx_map_create");
}

/* Maps the task over the inputs of a producer. */
int mpx_map_create_producer(mpx_executor *ex, const char *name, mpx_producer fn,
                            void *arg, uint64_t n, const mpx_map_options *o,
                            mpx_map **out) {
  mpx_map *m;
  if (!fn) {
    if (out)
      *out = NULL;
    return mpx__fail(MPX_EINVAL, "mpx_map_create_producer: NULL producer");
  }
  int rc = map_create(ex, name, o, out, &m, "mpx_map_create_producer");
  if (rc)
    return rc;
  m->src = SRC_PRODUCER;
  m->fn = fn;
  m->parg = arg;
  m->end_index = n;
  if (fn == mpx_elements_producer && mpx__elements_check(arg, NULL) == 0) {
    /* The stock producer over an array (as a job over one takes it):
     * packed a chunk at a time, ending where the producer would. */
    m->src = SRC_ELEMENTS;
    m->elems = *(const mpx_elements *)arg;
    if (m->elems.n < n)
      m->end_index = m->elems.n;
  }
  return map_start(m, out, "mpx_map_create_producer");
}

/* Creates a map whose producer is fn over its own copy of state (the
 * mpx_split or mpx_elements the call filled), so the caller keeps nothing
 * alive but the data the state points to. */
static int map_create_stock(mpx_executor *ex, const char *name,
                            const mpx_map_options *o, mpx_map **out,
                            const mpx_split *split, const mpx_elements *elems,
                            const char *call) {
  mpx_map *m;
  int rc = map_create(ex, name, o, out, &m, call);
  if (rc)
    return rc;
  m->src = SRC_PRODUCER;
  if (split) {
    m->split = *split;
    m->fn = mpx_split_producer;
    m->parg = &m->split;
    m->end_index = split->k;
  } else {
    m->src = SRC_ELEMENTS;
    m->elems = *elems;
    m->end_index = elems->n;
  }
  return map_start(m, out, call);
}

int mpx_map_create_range(mpx_executor *ex, const char *name, int64_t lo,
                         int64_t hi, uint64_t k, const mpx_map_options *o,
                         mpx_map **out) {
  mpx_split split = {lo, hi, k, {0, 0}};
  int rc = mpx__split_check(&split, "mpx_map_create_range");
  if (rc) {
    if (out)
      *out = NULL;
    return rc;
  }
  return map_create_stock(ex, name, o, out, &split, NULL,
                          "mpx_map_create_range");
}

int mpx_map_create_array(mpx_executor *ex, const char *name, const void *base,
                         uint64_t n, size_t size, const mpx_map_options *o,
                         mpx_map **out) {
  mpx_elements elems = {base, n, size};
  int rc = mpx__elements_check(&elems, "mpx_map_create_array");
  if (rc) {
    if (out)
      *out = NULL;
    return rc;
  }
  return map_create_stock(ex, name, o, out, NULL, &elems,
                          "mpx_map_create_array");
}

/* ---- iterating ------------------------------------------------------------
 */

/* Seconds left until deadline (negative deadline: forever). */
static double left(double deadline) {
  if (deadline < 0)
    return MPX_FOREVER;
  double l = deadline - mpx__now();
  return l > 0 ? l : 0;
}

/* Removes c from the submission list. */
static void unlink_chunk(mpx_map *m, mpx__chunk *c) {
  mpx__chunk **pp = &m->head, *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (!*pp)
    return;
  *pp = c->next;
  if (m->tail == c)
    m->tail = prev;
  c->next = NULL;
}

/* Waits for the next chunk to yield (input order, or completion order) and
 * takes it off the lists. Returns 0, MPX_ETIMEDOUT, MPX_EDEADLK, or
 * MPX_EOF (without a message) when no chunk is outstanding. */
static int wait_chunk(mpx_map *m, double deadline, mpx__chunk **out) {
  if (!m->head)
    return MPX_EOF;
  mpx__chunk *c;
  if (!m->rq) {
    c = m->head;
    int rc = mpx_future_wait(c->fut, left(deadline));
    if (rc == MPX_ETIMEDOUT)
      return mpx__fail(rc, "no result within the timeout");
    if (rc != 0)
      return rc;
  } else {
    pthread_mutex_lock(&m->rq->mu);
    if (!m->rq->head && mpx__future_no_block() && left(deadline) != 0) {
      /* On the manager thread (a done-callback) the chunks could never
       * finish while it waits, as mpx_future_wait() refuses too. */
      pthread_mutex_unlock(&m->rq->mu);
      return mpx__fail(MPX_EDEADLK, "a blocking wait from a done-callback "
                                    "on the manager thread would deadlock");
    }
    while (!m->rq->head) {
      if (left(deadline) == 0) {
        pthread_mutex_unlock(&m->rq->mu);
        return mpx__fail(MPX_ETIMEDOUT, "no result within the timeout");
      }
      /* With caller progress this thread turns the pool, then waits as
       * long as the turn says (a chunk's done-callback wakes it). With a
       * manager thread (us < 0) it waits for that, until the deadline. */
      pthread_mutex_unlock(&m->rq->mu);
      long us = mpx__executor_turn(m->ex);
      pthread_mutex_lock(&m->rq->mu);
      if (us == 0 || m->rq->head)
        continue;
      if (us < 0 && deadline < 0) {
        pthread_cond_wait(&m->rq->cv, &m->rq->mu);
        continue;
      }
      mpx__executor_idle_add(
          m->ex, mpx__cond_sleep_locked(&m->rq->cv, &m->rq->mu, us, deadline));
    }
    c = m->rq->head;
    m->rq->head = c->next_done;
    if (!m->rq->head)
      m->rq->tail = NULL;
    pthread_mutex_unlock(&m->rq->mu);
  }
  unlink_chunk(m, c);
  chunk_parse(c);
  *out = c;
  return 0;
}

/* What a drained map returns: the error that ended producing, once, then
 * MPX_EOF. */
static int drained(mpx_map *m) {
  if (m->end_rc < 0 && !m->end_reported) {
    m->end_reported = 1;
    return mpx__fail(m->end_rc, "%s", m->end_msg);
  }
  return mpx__fail(MPX_EOF, "every result has been yielded");
}

int mpx__map_next_chunk(mpx_map *m, double timeout, mpx__chunk **c) {
  *c = NULL;
  int nan = mpx__timeout_nan(timeout, "mpx_map_next");
  if (nan)
    return nan;
  double deadline = mpx__deadline(timeout);
  refill(m);
  int rc = wait_chunk(m, deadline, c);
  if (rc == MPX_EOF)
    return drained(m);
  if (rc != 0)
    return rc;
  m->outstanding -= (*c)->count;
  m->yielded += (*c)->count;
  refill(m);
  return 0;
}

/* Yields the next input of the chunk in hand (m->cur has one left). */
static int yield_cur(mpx_map *m, mpx_map_item *item) {
  mpx__chunk_item(m->cur, m->cur_pos++, item);
  m->yielded++;
  return 0;
}

/* Yields the next result of the map into *item (see mpx_map_next). */
static int map_next(mpx_map *m, double timeout, mpx_map_item *item) {
  if (!m || !item)
    return mpx__fail(MPX_EINVAL, "NULL map or item");
  memset(item, 0, sizeof *item);
  int nan = mpx__timeout_nan(timeout, "mpx_map_next");
  if (nan)
    return nan;
  if (m->cur && m->cur_pos == m->cur->count) {
    /* The previous call's data is released only now. */
    m->outstanding -= m->cur->count;
    mpx__chunk_free(m->cur);
    m->cur = NULL;
  }
  if (!m->cur) {
    double deadline = mpx__deadline(timeout);
    refill(m);
    int rc = wait_chunk(m, deadline, &m->cur);
    if (rc == MPX_EOF)
      return drained(m);
    if (rc != 0)
      return rc;
    m->cur_pos = 0;
  }
  return yield_cur(m, item);
}

/* Yields the next result of the map; failures' messages name the call. */
int mpx_map_next(mpx_map *m, double timeout, mpx_map_item *item) {
  /* The common case, an input of the chunk being yielded: no error state
   * to keep, no wait (most of a map's per-input cost on the root). */
  if (m && item && m->cur && m->cur_pos < m->cur->count && !isnan(timeout))
    return yield_cur(m, item);
  unsigned long seq = mpx__error_seq();
  return mpx__fail_call(map_next(m, timeout, item), "mpx_map_next", seq);
}

/* Stops producing and cancels the chunks not yet sent. */
int mpx_map_cancel(mpx_map *m) {
  if (!m)
    return mpx__fail(MPX_EINVAL, "mpx_map_cancel: NULL map");
  m->producing = 0;
  for (mpx__chunk *c = m->head; c; c = c->next)
    mpx_future_cancel(c->fut);
  return 0;
}

/* Reports the inputs submitted and yielded so far (0 and 0 for NULL). */
void mpx_map_counts(const mpx_map *m, uint64_t *submitted, uint64_t *yielded) {
  if (submitted)
    *submitted = m ? m->submitted : 0;
  if (yielded)
    *yielded = m ? m->yielded : 0;
}

/* Cancels what is pending, drops the rest and frees the map. */
void mpx_map_destroy(mpx_map **mp) {
  if (!mp || !*mp)
    return;
  mpx_map *m = *mp;
  *mp = NULL;
  mpx_map_cancel(m);
  if (m->rq) {
    pthread_mutex_lock(&m->rq->mu);
    m->rq->dead = 1;
    /* Chunks already queued hold only the map's reference now. */
    m->rq->head = m->rq->tail = NULL;
    rq_unref_locked(m->rq);
  }
  mpx__chunk *c = m->head;
  while (c) {
    mpx__chunk *n = c->next;
    mpx__chunk_free(c);
    c = n;
  }
  mpx__chunk_free(m->cur);
  free(m);
}
