/*
 * hier.c -- the plan of sub-managers and a sub-manager's loop (hier.h).
 *
 * A sub-manager keeps the tasks of the root's call items in a queue of its
 * own, sends them to its workers in batches sized like the root's
 * (credits.h: breadth first, guided by the backlog, prefetch while tasks
 * are short), and gathers their results into messages to the root. Once
 * every task of a root call item has been handed on to a worker, the next
 * message to the root returns that credit (the flags count the call items
 * it ends): the root keeps at most `prefetch` items queued here, each a
 * share of its backlog for this rank's workers, and the workers' own
 * credits bound what runs. For each worker it remembers, in order, the
 * work ids it sent: a result it did not send there is a protocol error.
 * The
 * root's control messages (cancel, terminate) are passed on to the
 * workers that hold items, and the tasks still queued here are answered
 * cancelled at once. On the root's STOP it releases its workers as the
 * root would, then acknowledges.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credits.h"
#include "hier.h"
#include "msg.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

/* Below this many ranks MPX_GROUP_AUTO stays flat. */
#define AUTO_MIN_RANKS 512
/* The largest head a call item or a gathered result may grow to. */
#define HEAD_MAX ((size_t)4 << 20)

/* ---- the plan ------------------------------------------------------------ */

void mpx__plan_free(mpx__plan *p) {
  free(p->parent);
  free(p->fan);
  free(p->members);
  *p = (mpx__plan){0};
}

/* The root's part of the plan: from the node leader of every rank (the
 * lowest rank of its node), the rank each rank serves (parent, -1 for the
 * root) and the workers of each sub-manager (fan), exactly as the header
 * describes: nodes numbered by their lowest ranks; groups of k ranks in
 * ascending order within a node, or whole runs of m nodes when k exceeds
 * the largest node. Sets *flat for MPX_GROUP_AUTO on one node. Returns 0
 * or MPX_ENOMEM. */
static int plan_root(const int *leader, int size, int root, int group,
                     mpx__plan *p, int *flat) {
  int *node = malloc((size_t)size * sizeof *node);  /* per leader rank */
  int *nsize = calloc((size_t)size, sizeof *nsize); /* per node */
  int *lead = malloc((size_t)size * sizeof *lead);  /* per rank */
  int *glen = calloc((size_t)size, sizeof *glen);   /* per lead */
  int *pos = calloc((size_t)size, sizeof *pos);     /* per colour */
  int *cur = malloc((size_t)size * sizeof *cur);    /* per colour */
  p->parent = malloc((size_t)size * sizeof *p->parent);
  p->fan = calloc((size_t)size, sizeof *p->fan);
  int rc = 0;
  if (!node || !nsize || !lead || !glen || !pos || !cur || !p->parent ||
      !p->fan) {
    rc = mpx__fail(MPX_ENOMEM, "out of memory planning %d ranks", size);
    goto out;
  }
  int nnodes = 0, most = 0;
  for (int r = 0; r < size; r++) /* a node's lowest rank comes first */
    if (leader[r] == r)
      node[r] = nnodes++;
  for (int r = 0; r < size; r++)
    if (++nsize[node[leader[r]]] > most)
      most = nsize[node[leader[r]]];
  *flat = group == MPX_GROUP_AUTO && nnodes < 2;
  if (*flat)
    goto out;
  int m = group >= 2 && group > most ? group / most + (group % most != 0) : 1;
  int k = group >= 2 && m == 1 ? group : INT_MAX;
  /* Each colour (a node, or m nodes) but the root, in ascending order, cut
   * into groups of k; a group's first rank leads it. */
  for (int r = 0; r < size; r++) {
    if (r == root)
      continue;
    int c = node[leader[r]] / m;
    if (pos[c]++ % k == 0)
      cur[c] = r;
    lead[r] = cur[c];
    glen[cur[c]]++;
  }
  for (int r = 0; r < size; r++) {
    if (r == root) {
      p->parent[r] = -1;
      continue;
    }
    int l = lead[r];
    p->parent[r] = glen[l] == 1 || l == r ? root : l;
    if (p->parent[r] != root)
      p->fan[l]++;
  }
  for (int r = 0; r < size; r++)
    p->ngroups += p->fan[r] > 0;
out:
  free(node);
  free(nsize);
  free(lead);
  free(glen);
  free(pos);
  free(cur);
  if (rc != 0 || *flat) {
    free(p->parent);
    free(p->fan);
    p->parent = p->fan = NULL;
    p->ngroups = 0;
  }
  return rc;
}

/* The root's buffers for handing out the plan: each rank's {parent, fan}
 * (pf) and each sub-manager's workers, ascending (members, counts[r] of
 * them from displs[r]). Returns 0 or MPX_ENOMEM. */
static int plan_pack(const mpx__plan *p, int size, int root, int **pfp,
                     int **countsp, int **displsp, int **membersp) {
  int *pf = malloc((size_t)size * 2 * sizeof *pf);
  int *counts = malloc((size_t)size * sizeof *counts);
  int *displs = malloc((size_t)size * sizeof *displs);
  int *members = malloc((size_t)size * sizeof *members);
  int *next = calloc((size_t)size, sizeof *next);
  *pfp = pf;
  *countsp = counts;
  *displsp = displs;
  *membersp = members;
  if (!pf || !counts || !displs || !members || !next) {
    free(next);
    return mpx__fail(MPX_ENOMEM, "out of memory planning %d ranks", size);
  }
  for (int r = 0, at = 0; r < size; r++) {
    pf[2 * r] = p->parent[r];
    pf[2 * r + 1] = p->fan[r];
    counts[r] = p->fan[r];
    displs[r] = at;
    at += counts[r];
  }
  for (int r = 0; r < size; r++) {
    int l = p->parent[r];
    if (l >= 0 && l != root)
      members[displs[l] + next[l]++] = r;
  }
  free(next);
  return 0;
}

int mpx__plan_make(MPI_Comm comm, int root, int group, mpx__plan *p) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  *p = (mpx__plan){0};
  p->up = root;
  if (group == MPX_GROUP_FLAT || size < 3 ||
      (group == MPX_GROUP_AUTO && size < AUTO_MIN_RANKS))
    return 0; /* the same on every rank: no collective */
  /* Every rank's node, named by its lowest rank, is gathered on the root,
   * which plans alone and hands each rank its part: over all ranks only
   * broadcasts, a gather, scatters and one allreduce, O(ranks) ints at
   * the root (an MPI_Comm_split over all ranks is an all-gather: at
   * 16,384 simulated ranks, minutes in SMPI). */
  MPI_Comm nc = MPI_COMM_NULL;
  int mrc =
      MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &nc);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)");
  int leader = rank;
  mrc = MPI_Bcast(&leader, 1, MPI_INT, 0, nc); /* nc is in rank order */
  MPI_Comm_free(&nc);
  int *leaders = NULL, rc = 0;
  if (rank == root && !(leaders = malloc((size_t)size * sizeof *leaders)))
    rc = mpx__fail(MPX_ENOMEM, "out of memory planning %d ranks", size);
  /* The root's verdict, twice: {its code, flat}. */
  int verdict[2] = {rc, 0};
  if (mrc == MPI_SUCCESS)
    mrc = MPI_Bcast(verdict, 2, MPI_INT, root, comm);
  if (mrc == MPI_SUCCESS && verdict[0] == 0)
    mrc = MPI_Gather(&leader, 1, MPI_INT, leaders, 1, MPI_INT, root, comm);
  int *pf = NULL, *counts = NULL, *displs = NULL, *members = NULL;
  if (mrc == MPI_SUCCESS && rank == root && rc == 0) {
    rc = plan_root(leaders, size, root, group, p, &verdict[1]);
    if (rc == 0 && !verdict[1])
      rc = plan_pack(p, size, root, &pf, &counts, &displs, &members);
    verdict[0] = rc;
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Bcast(verdict, 2, MPI_INT, root, comm);
  } else if (mrc == MPI_SUCCESS && verdict[0] == 0) {
    mrc = MPI_Bcast(verdict, 2, MPI_INT, root, comm);
  }
  free(leaders);
  if (mrc == MPI_SUCCESS && verdict[0] == 0 && !verdict[1]) {
    int mine[2] = {root, 0}, ok, all_ok = 0;
    mrc = MPI_Scatter(pf, 2, MPI_INT, mine, 2, MPI_INT, root, comm);
    if (mrc == MPI_SUCCESS && rank != root) {
      p->up = mine[0];
      if (mine[1] > 0 &&
          !(p->members = malloc((size_t)(unsigned)mine[1] * sizeof(int))))
        rc = mpx__fail(MPX_ENOMEM, "out of memory planning a group");
      else
        p->nmembers = mine[1];
    }
    ok = rc == 0;
    if (mrc == MPI_SUCCESS) /* the scatter needs every buffer */
      mrc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (mrc == MPI_SUCCESS && all_ok)
      mrc = MPI_Scatterv(members, counts, displs, MPI_INT, p->members,
                         p->nmembers, MPI_INT, root, comm);
  }
  free(pf);
  free(counts);
  free(displs);
  free(members);
  if (mrc != MPI_SUCCESS && rc == 0)
    rc = mpx__mpi_fail(mrc, "planning the sub-managers");
  /* A failure elsewhere (the root's verdict, another rank's memory) is
   * agreed on by the caller; this rank's plan is then dropped. */
  return rank == root && verdict[0] != 0 ? verdict[0] : rc;
}

/* ---- a queue of fixed-size elements (a ring) ------------------------ */

typedef struct ring {
  unsigned char *v;
  size_t esz, head, n, cap;
} ring;

static int ring_push(ring *r, const void *e) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    unsigned char *v = malloc(cap * r->esz);
    if (!v)
      return mpx__fail(MPX_ENOMEM, "sub-manager out of memory");
    for (size_t i = 0; i < r->n; i++)
      memcpy(v + i * r->esz, r->v + ((r->head + i) % r->cap) * r->esz, r->esz);
    free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
  }
  memcpy(r->v + ((r->head + r->n) % r->cap) * r->esz, e, r->esz);
  r->n++;
  return 0;
}

static void *ring_front(const ring *r) {
  return r->n ? r->v + r->head * r->esz : NULL;
}

static void ring_pop(ring *r) {
  r->head = (r->head + 1) % r->cap;
  r->n--;
}

static void *ring_at(const ring *r, size_t k) {
  return r->v + ((r->head + k) % r->cap) * r->esz;
}

/* Removes the k-th element from the front. */
static void ring_remove(ring *r, size_t k) {
  for (; k > 0; k--)
    memcpy(ring_at(r, k), ring_at(r, k - 1), r->esz);
  ring_pop(r);
}

/* ---- the sub-manager's state --------------------------------------- */

/* A task of the root's waiting here. */
typedef struct entry {
  uint64_t work_id, len;
  uint32_t task_id;
  int32_t status; /* its time limit, as the root encoded it */
  void *data;     /* owned */
  int call;       /* the root call item it came in */
  int avoid;      /* a worker it failed on, to run elsewhere; -1 none */
} entry;

/* A task sent to a worker, awaiting its result. */
typedef struct sent {
  uint64_t work_id;
} sent;

typedef struct lead {
  MPI_Comm comm;
  int root, rank, size;
  const mpx_executor_options *o;
  int *members, nw;         /* the workers, ascending */
  ring *wq;                 /* per worker: sent, awaiting results */
  unsigned char *cancelled; /* per worker: control messages passed on */
  mpx__credits cr;
  ring q;  /* tasks not yet sent */
  ring rq; /* retries not yet sent, each for another worker than
              the one it failed on */
  int *left, ncalls, capcalls; /* per root call item: tasks not handed on */
  int *freed, nfreed;          /* call slots free again */
  mpx__msgbuf out;             /* results for the root not yet sent */
  double first_unsent;
  unsigned ends; /* root credits out returns (items handed on) */
  mpx__msgbuf mb;
  mpx__send *sends;
  double task_s, span;
  int ctl_count, cancelling, failed;
  long held; /* call items the workers hold */
} lead;

/* The index of worker rank w, or -1. */
static int member(const lead *L, int w) {
  int lo = 0, hi = L->nw - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (L->members[mid] == w)
      return mid;
    if (L->members[mid] < w)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

/* Sends the gathered results (with the credits they return) to the
 * root; release(tail) once a tail item was sent. */
static int flush(lead *L, void (*release)(void *), void *tail) {
  if (L->out.nitems == 0 && L->ends == 0)
    return 0;
  if (L->ends)
    L->out.flags |= MPX_MSG_END_OF_CALL | (L->ends << MPX_MSG_ENDS_SHIFT);
  L->ends = 0;
  mpx__msgbuf_finish(&L->out);
  int rc = mpx__send_start(L->comm, L->root, &L->out, release, tail, &L->sends);
  mpx__msgbuf_begin(&L->out, MPX_MSG_RESULT, MPX_MSG_RANKED);
  return rc;
}

/* One more task of root call item c has been handed on to a worker (or
 * answered cancelled): once all have, the item's credit goes back to the
 * root, which then sends more. So the root's credits bound the tasks
 * queued here, and this rank's workers are never short of work while the
 * root has some: the workers' own credits bound what runs. */
static void call_done(lead *L, int c) {
  if (--L->left[c] > 0)
    return;
  L->ends++;
  L->freed[L->nfreed++] = c;
}

/* A slot for a root call item of n tasks, or -1 without memory. */
static int call_new(lead *L, int n) {
  int c;
  if (L->nfreed > 0) {
    c = L->freed[--L->nfreed];
  } else {
    if (L->ncalls == L->capcalls) {
      int cap = L->capcalls ? L->capcalls * 2 : 8;
      int *left = realloc(L->left, (size_t)cap * sizeof *left);
      if (left)
        L->left = left;
      int *freed = realloc(L->freed, (size_t)cap * sizeof *freed);
      if (freed)
        L->freed = freed;
      if (!left || !freed)
        return -1;
      L->capcalls = cap;
    }
    c = L->ncalls++;
  }
  L->left[c] = n;
  return c;
}

/* Adds one answer for the root, from rank `by`, to the gathered results.
 * A payload big enough to be a tail travels alone, as the workers send
 * it; the buffer is then taken (freed once sent). */
static int answer(lead *L, int by, uint64_t id, uint32_t busy, int32_t st,
                  void *data, uint64_t len, int is_tail) {
  if (L->out.nitems == 0)
    L->first_unsent = mpx__now();
  int rc;
  if (is_tail) {
    if ((rc = flush(L, NULL, NULL)) != 0) {
      free(data);
      return rc;
    }
    rc = mpx__msgbuf_add_tail_ranked(&L->out, by, id, busy, st, data, len);
    if (rc) {
      free(data);
      return rc;
    }
    return flush(L, free, data);
  }
  return mpx__msgbuf_add_ranked(&L->out, by, id, busy, st, data, len);
}

/* Answers a task of root call item c cancelled: it never started. */
static int cancel_task(lead *L, uint64_t id, int c) {
  call_done(L, c);
  return answer(L, L->rank, id, 0, MPX_ECANCELED, NULL, 0, 0);
}

/* Tells the root this sub-manager cannot go on (once): an item of work id
 * 0 with the code and text; the root breaks the pool and sends STOP. */
static void report(lead *L, int code, const char *text) {
  if (L->failed)
    return;
  L->failed = 1;
  if (flush(L, NULL, NULL) != 0)
    return;
  mpx__msgbuf_add_ranked(&L->out, L->rank, 0, 0, code, text, strlen(text));
  flush(L, NULL, NULL);
}

/* Answers every queued task cancelled: they never started. */
static int cancel_queue(lead *L) {
  for (int k = 0; k < 2; k++) {
    ring *q = k ? &L->q : &L->rq;
    entry *e;
    while ((e = ring_front(q)) != NULL) {
      entry t = *e;
      ring_pop(q);
      free(t.data);
      int rc = cancel_task(L, t.work_id, t.call);
      if (rc)
        return rc;
    }
  }
  return 0;
}

/* Receives a control message from the root if one waits (with wait set,
 * blocks for it), answers the queue cancelled and passes it on to every
 * worker that holds items. Returns 0 or MPX_EMPI. */
static int control(lead *L, int wait) {
  int v = 0, rc = mpx__ctl_recv(L->comm, L->root, wait, &v);
  if (rc <= 0)
    return rc;
  L->ctl_count++;
  L->cancelling = 1;
  if ((rc = cancel_queue(L)) != 0)
    return rc;
  for (int i = 0; i < L->nw; i++) {
    int w = L->members[i];
    if (mpx__credits_held(&L->cr, w) <= 0)
      continue;
    if ((rc = MPI_Send(&v, 1, MPI_INT, w, MPX_TAG_CTL, L->comm)) != MPI_SUCCESS)
      return mpx__mpi_fail(rc, "MPI_Send of a cancel");
    L->cancelled[i]++;
  }
  return 0;
}

/* Queues the tasks of a root call item (answered cancelled at once while
 * cancelling). */
static int take_call(lead *L, mpx__recvd *r) {
  int c = call_new(L, (int)r->hdr.nitems);
  if (c < 0)
    return mpx__fail(MPX_ENOMEM, "sub-manager out of memory");
  if (r->hdr.nitems == 0) {
    L->left[c] = 1;
    call_done(L, c);
    return 0;
  }
  size_t pos = 0;
  mpx__msg_item it;
  while (mpx__msg_next(r->head, &r->hdr, &pos, r->tail, &it)) {
    entry e = {it.work_id, it.len, it.task_id, it.status, NULL, c, it.rank};
    if (L->cancelling)
      e.len = 0; /* the payload is never needed */
    else if (r->tail && it.data == r->tail) {
      e.data = r->tail; /* adopt the separately received payload */
      r->tail = NULL;
    } else if (it.len && !(e.data = mpx__alloc((size_t)it.len))) {
      return mpx__fail(MPX_ENOMEM,
                       "sub-manager out of memory for a "
                       "%llu-byte argument",
                       (unsigned long long)it.len);
    } else if (it.len) {
      memcpy(e.data, it.data, (size_t)it.len);
    }
    int rc = L->cancelling
                 ? cancel_task(L, e.work_id, c)
                 : ring_push(e.avoid >= 0 && L->nw > 1 ? &L->rq : &L->q, &e);
    if (rc) {
      free(e.data);
      return rc;
    }
  }
  return 0;
}

/* Passes a worker's results on to the root. */
static int forward(lead *L, mpx__recvd *r) {
  int i = member(L, r->src);
  if (i < 0 || r->hdr.kind != MPX_MSG_RESULT) {
    char m[120];
    snprintf(m, sizeof m,
             "a message of kind %u from rank %d, not a result "
             "of one of its workers",
             r->hdr.kind, r->src);
    report(L, MPX_EPROTO, m);
    return 0;
  }
  size_t pos = 0;
  mpx__msg_item it;
  double busy = 0;
  int n = 0, rc = 0;
  while (rc == 0 && mpx__msg_next(r->head, &r->hdr, &pos, r->tail, &it)) {
    /* Answers come in the order sent, except when a cancel answers the
     * tasks not started before the running one: look a little further. */
    ring *wq = &L->wq[i];
    size_t k = 0;
    while (k < wq->n && ((sent *)ring_at(wq, k))->work_id != it.work_id)
      k++;
    if (k == wq->n) {
      char m[160];
      snprintf(m, sizeof m, "rank %d returned unknown work id %llu", r->src,
               (unsigned long long)it.work_id);
      report(L, MPX_EPROTO, m);
      return 0;
    }
    ring_remove(wq, k);
    if (it.status != MPX_ECANCELED) {
      busy += it.task_id;
      n++;
    }
    int is_tail = r->tail && it.data == r->tail;
    void *data = (void *)it.data;
    if (is_tail)
      r->tail = NULL; /* taken: freed once sent on */
    rc = answer(L, r->src, it.work_id, it.task_id, it.status, data, it.len,
                is_tail);
  }
  if (n > 0) {
    double t = 1e-6 * busy / n;
    L->task_s = L->task_s < 0 ? t : 0.75 * L->task_s + 0.25 * t;
  }
  for (unsigned e = mpx__msg_ends(&r->hdr); rc == 0 && e > 0; e--)
    if (mpx__credits_give(&L->cr, r->src) == 0) {
      L->held--;
    } else {
      char m[120];
      snprintf(m, sizeof m, "rank %d ended a call item it did not hold",
               r->src);
      report(L, MPX_EPROTO, m);
      break;
    }
  return rc;
}

/* Adds queued task e to the call item for worker i; a payload big enough
 * to be a tail closes it (*tail set). Takes e's data. */
static int add_entry(lead *L, int i, entry *e, void **tail) {
  sent s = {e->work_id};
  int rc = ring_push(&L->wq[i], &s);
  if (rc == 0)
    call_done(L, e->call); /* handed on */
  if (rc == 0 && e->len >= MPX_TAIL_MIN) {
    rc = mpx__msgbuf_add_tail(&L->mb, e->work_id, e->task_id, e->status,
                              e->data, e->len);
    *tail = e->data;
  } else if (rc == 0) {
    rc = mpx__msgbuf_add(&L->mb, e->work_id, e->task_id, e->status, e->data,
                         e->len);
    free(e->data);
  } else {
    free(e->data);
  }
  return rc;
}

/* Sends one call item of up to `want` queued tasks to worker w: retries
 * that did not fail on w first, then the queue in order. */
static int send_batch(lead *L, int w, size_t want) {
  int i = member(L, w);
  mpx__msgbuf_begin(&L->mb, MPX_MSG_CALL, 0);
  void *tail = NULL;
  int rc = 0;
  size_t n = 0;
  for (int k = 0; k < 2; k++) {
    ring *q = k ? &L->q : &L->rq;
    for (size_t left = q->n;
         rc == 0 && !tail && left > 0 && n < want && L->mb.len < HEAD_MAX;
         left--) {
      entry e = *(entry *)ring_front(q);
      int skip = (k == 0 && e.avoid == w) || (n > 0 && e.len >= MPX_TAIL_MIN);
      if (skip && k == 1)
        break; /* the queue keeps its order: the tail goes next time */
      ring_pop(q);
      if (skip) {
        rc = ring_push(q, &e); /* a retry waits for another worker */
        continue;
      }
      rc = add_entry(L, i, &e, &tail);
      n++;
    }
  }
  if (rc) {
    free(tail);
    return rc;
  }
  if (n == 0)
    return 0;
  mpx__msgbuf_finish(&L->mb);
  rc = mpx__send_start(L->comm, w, &L->mb, tail ? free : NULL, tail, &L->sends);
  mpx__credits_take(&L->cr, w);
  L->held++;
  return rc;
}

/* Hands queued tasks to the workers with a free credit, breadth first. */
static int dispatch(lead *L) {
  if (L->cancelling || L->failed)
    return 0;
  mpx__batch_policy p = {L->nw, L->o->prefetch, L->o->max_batch, L->task_s,
                         L->span};
  int lim = -1;
  for (int held = 0; held < L->o->prefetch && L->q.n + L->rq.n > 0; held++) {
    for (int w = mpx__credits_first(&L->cr, held), next;
         w >= 0 && L->q.n + L->rq.n > 0; w = next) {
      next = mpx__credits_next(&L->cr, w);
      size_t backlog = L->q.n + L->rq.n;
      if (lim < 0)
        lim = mpx__prefetch_now(&p, backlog);
      if (held >= lim)
        return 0;
      int rc = send_batch(L, w, mpx__batch_size(&p, backlog, lim, 1));
      if (rc)
        return rc;
    }
  }
  return 0;
}

/* The i-th worker for mpx__release. */
static int member_at(void *arg, int i, int *ctl) {
  lead *L = arg;
  *ctl = L->cancelled[i];
  return L->members[i];
}

/* The root's STOP: passes its control messages on, releases the workers
 * (each acknowledges after its last result, which is dropped: the root
 * has what it needs), then acknowledges. */
static int stop(lead *L, const mpx__recvd *r) {
  int want = (r->hdr.flags & MPX_MSG_CANCEL_SENT)
                 ? 1 + ((r->hdr.flags & MPX_MSG_TWO_CTL) != 0)
                 : 0;
  int rc = 0;
  while (rc == 0 && L->ctl_count < want)
    rc = control(L, 1);
  if (rc == 0)
    rc = mpx__release(L->comm, L->nw, member_at, L, &L->mb, &L->sends);
  mpx__msgbuf_begin(&L->mb, MPX_MSG_STOP, 0);
  mpx__msgbuf_finish(&L->mb);
  int rc2 = mpx__send_start(L->comm, L->root, &L->mb, NULL, NULL, &L->sends);
  return rc ? rc : rc2;
}

static void lead_free(lead *L) {
  for (int k = 0; k < 2; k++) {
    ring *q = k ? &L->q : &L->rq;
    entry *e;
    while ((e = ring_front(q)) != NULL) {
      free(e->data);
      ring_pop(q);
    }
    free(q->v);
  }
  for (int i = 0; L->wq && i < L->nw; i++)
    free(L->wq[i].v);
  free(L->wq);
  free(L->cancelled);
  free(L->left);
  free(L->freed);
  mpx__credits_destroy(&L->cr);
  mpx__msgbuf_free(&L->out);
  mpx__msgbuf_free(&L->mb);
}

int mpx__leader_loop(MPI_Comm comm, int root, const mpx__plan *p,
                     const mpx_executor_options *o) {
  lead L = {0};
  L.comm = comm;
  L.root = root;
  L.o = o;
  L.task_s = -1;
  MPI_Comm_rank(comm, &L.rank);
  MPI_Comm_size(comm, &L.size);
  mpx__low_timer_slack();
  mpx__sim_relay();
  L.span = MPX__PREFETCH_SPAN * 1e-6 *
           (double)mpx__env_long("MPX_IDLE_SLEEP_US", 1000);
  L.nw = p->nmembers;
  L.members = p->members;
  L.wq = calloc((size_t)L.nw, sizeof *L.wq);
  L.cancelled = calloc((size_t)L.nw, 1);
  L.q.esz = L.rq.esz = sizeof(entry);
  int *up = malloc((size_t)L.size * sizeof *up); /* for the credits */
  for (int w = 0; up && w < L.size; w++)
    up[w] = -1;
  for (int i = 0; up && i < L.nw; i++)
    up[L.members[i]] = L.rank;
  int rc = 0;
  if (!up || !L.wq || !L.cancelled ||
      mpx__credits_init_children(&L.cr, L.size, root, o->prefetch, up,
                                 L.rank) != 0)
    rc = mpx__fail(MPX_ENOMEM, "sub-manager out of memory");
  free(up);
  if (rc)
    L.nw = 0; /* nothing to hand out or release */
  for (int i = 0; rc == 0 && i < L.nw; i++)
    L.wq[i].esz = sizeof(sent);
  mpx__msgbuf_begin(&L.out, MPX_MSG_RESULT, MPX_MSG_RANKED);
  if (rc) /* tell the root, then serve its STOP */
    report(&L, rc, mpx_last_error());
  mpx__backoff idle;
  mpx__backoff_init(&idle);
  rc = 0;
  for (;;) {
    int moved = 0;
    if ((rc = control(&L, 0)) != 0)
      break;
    for (int i = 0; i < 256; i++) {
      mpx__recvd r;
      int got = mpx__recv_poll(comm, &r);
      if (got == MPX_EPROTO) {
        report(&L, MPX_EPROTO, mpx_last_error());
        moved = 1;
        continue;
      }
      if (got < 0) {
        rc = got;
        goto out;
      }
      if (got == 0)
        break;
      moved = 1;
      if (r.src == root && r.hdr.kind == MPX_MSG_STOP) {
        rc = stop(&L, &r);
        mpx__recvd_free(&r);
        goto out;
      }
      if (r.src == root && r.hdr.kind == MPX_MSG_CALL && !L.failed)
        rc = take_call(&L, &r);
      else if (r.src != root)
        rc = forward(&L, &r);
      else if (!L.failed)
        report(&L, MPX_EPROTO,
               "a message of an unexpected kind from the "
               "root");
      mpx__recvd_free(&r);
      if (rc) {
        report(&L, rc, mpx_last_error());
        rc = 0;
      }
    }
    if ((rc = dispatch(&L)) != 0) {
      report(&L, rc, mpx_last_error());
      rc = 0;
    }
    /* Credits at once (they keep the root sending); results once they
     * are flush_interval old (the root's cost is per message: gathering
     * is the point), or at once when no worker holds anything (the end
     * of the work: nothing left to gather them with). */
    if (L.ends > 0 ||
        (L.out.nitems > 0 &&
         (mpx__now() - L.first_unsent >= o->flush_interval ||
          L.out.len >= HEAD_MAX || (L.held == 0 && L.q.n + L.rq.n == 0))))
      rc = flush(&L, NULL, NULL);
    if (rc == 0)
      rc = mpx__send_progress(&L.sends, 0);
    if (rc)
      break;
    if (moved)
      mpx__backoff_active(&idle);
    else
      mpx__backoff_idle(&idle);
  }
out:;
  int rc2 = mpx__send_progress(&L.sends, 1);
  lead_free(&L);
  return rc ? rc : rc2;
}
