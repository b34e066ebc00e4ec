/*
 * producers.h -- the checks behind the stock producers, shared with the
 * map calls built on them so that a bad argument fails at creation with
 * the message naming that call.
 */
#ifndef MPX_PRODUCERS_H
#define MPX_PRODUCERS_H

#include "mpx.h"

/* 0 when s describes a valid split (lo <= hi, k >= 1), else MPX_EINVAL
 * with a message naming call. */
int mpx__split_check(const mpx_split *s, const char *call);

/* 0 when e describes a valid array (n == 0, or a base and a size > 0 whose
 * n elements fit the address space), else MPX_EINVAL or MPX_E2BIG with a
 * message naming call (a NULL call: no message, the code only). */
int mpx__elements_check(const mpx_elements *e, const char *call);

#endif
