/*
 * credits.c -- the workers with free credits as one doubly linked list per
 * number of items held (see credits.h).
 */
#include "credits.h"

#include <stdlib.h>

#include "mpx.h"

int mpx__credits_init(mpx__credits *c, int size, int root, int levels) {
  return mpx__credits_init_children(c, size, root, levels, NULL, root);
}

int mpx__credits_init_children(mpx__credits *c, int size, int root, int levels,
                               const int *parent, int me) {
  *c = (mpx__credits){.size = size, .levels = levels};
  if (size < 1 || levels < 1 || root < 0 || root >= size || me < 0 ||
      me >= size)
    return MPX_EINVAL;
  c->held = malloc((size_t)size * sizeof *c->held);
  c->next = malloc((size_t)size * sizeof *c->next);
  c->prev = malloc((size_t)size * sizeof *c->prev);
  c->head = malloc((size_t)(levels + 1) * sizeof *c->head);
  c->tail = malloc((size_t)(levels + 1) * sizeof *c->tail);
  if (!c->held || !c->next || !c->prev || !c->head || !c->tail) {
    mpx__credits_destroy(c);
    return MPX_ENOMEM;
  }
  for (int h = 0; h <= levels; h++)
    c->head[h] = c->tail[h] = -1;
  for (int w = 0; w < size; w++) {
    c->held[w] = -1;
    c->next[w] = c->prev[w] = -1;
  }
  int last = -1;
  for (int k = 1; k < size; k++) {
    int w = (me + k) % size;
    if (w == root || (parent ? parent[w] != me : 0))
      continue;
    c->held[w] = 0;
    c->prev[w] = last;
    c->next[w] = -1;
    if (last < 0)
      c->head[0] = w;
    else
      c->next[last] = w;
    last = w;
  }
  c->tail[0] = last;
  return 0;
}

size_t mpx__batch_size(const mpx__batch_policy *p, size_t backlog, int prefetch,
                       int fan) {
  size_t slots = (size_t)p->workers * (size_t)prefetch * 2;
  size_t b = (backlog + slots - 1) / slots * (size_t)fan;
  size_t most = (size_t)p->max_batch * (size_t)fan;
  if (b > most)
    b = most;
  double span = p->span * fan;
  if (p->task_s > 0 && (double)b * p->task_s > span) {
    double fit = span / p->task_s;
    b = fit < 1 ? 1 : (size_t)fit;
  }
  return b < 1 ? 1 : b;
}

int mpx__prefetch_now(const mpx__batch_policy *p, size_t backlog) {
  if (p->prefetch == 1 || p->task_s < 0)
    return 1;
  size_t b = mpx__batch_size(p, backlog, p->prefetch, 1);
  return (double)b * p->task_s < p->span ? p->prefetch : 1;
}

void mpx__credits_destroy(mpx__credits *c) {
  free(c->held);
  free(c->next);
  free(c->prev);
  free(c->head);
  free(c->tail);
  *c = (mpx__credits){0};
}

int mpx__credits_first(const mpx__credits *c, int held) {
  return held < 0 || held >= c->levels ? -1 : c->head[held];
}

int mpx__credits_next(const mpx__credits *c, int w) {
  return w < 0 || w >= c->size ? -1 : c->next[w];
}

int mpx__credits_held(const mpx__credits *c, int w) {
  return w < 0 || w >= c->size ? -1 : c->held[w];
}

/* Lists exist for 0..levels-1 held items; a worker holding `levels` is
 * in none (its links stay -1). */
static void unlink_w(mpx__credits *c, int w) {
  int h = c->held[w];
  if (h >= c->levels)
    return;
  if (c->prev[w] >= 0)
    c->next[c->prev[w]] = c->next[w];
  else
    c->head[h] = c->next[w];
  if (c->next[w] >= 0)
    c->prev[c->next[w]] = c->prev[w];
  else
    c->tail[h] = c->prev[w];
  c->next[w] = c->prev[w] = -1;
}

int mpx__credits_take(mpx__credits *c, int w) {
  if (w < 0 || w >= c->size || c->held[w] < 0 || c->held[w] >= c->levels)
    return MPX_EINVAL;
  unlink_w(c, w);
  int h = ++c->held[w];
  if (h < c->levels) { /* to the back */
    c->prev[w] = c->tail[h];
    if (c->tail[h] >= 0)
      c->next[c->tail[h]] = w;
    else
      c->head[h] = w;
    c->tail[h] = w;
  }
  return 0;
}

int mpx__credits_give(mpx__credits *c, int w) {
  if (w < 0 || w >= c->size || c->held[w] <= 0)
    return MPX_EINVAL;
  unlink_w(c, w);
  int h = --c->held[w]; /* to the front */
  c->next[w] = c->head[h];
  if (c->head[h] >= 0)
    c->prev[c->head[h]] = w;
  else
    c->tail[h] = w;
  c->head[h] = w;
  return 0;
}
