/*
 * errors.c -- mpx_strerror(), mpx_err_name() and the thread-local detail
 * message behind mpx_last_error(), all generated from MPX_ERRNO_MAP.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mpx.h"
#include "util.h"

static _Thread_local char last_error[1024];

/* Counts the messages set on this thread, so that a public call can tell
 * whether its helpers set one (see mpx__fail_call). */
static _Thread_local unsigned long error_seq;

/* Returns the sentence of code from the table. */
const char *mpx_strerror(int code) {
  if (code == 0)
    return "success";
  switch (code) {
#define MPX_ERRNO_STR(name, value, msg)                                        \
  case value:                                                                  \
    return msg;
    MPX_ERRNO_MAP(MPX_ERRNO_STR)
#undef MPX_ERRNO_STR
  }
  return "unknown error";
}

/* Returns the symbolic name of code from the table. */
const char *mpx_err_name(int code) {
  if (code == 0)
    return "MPX_OK";
  switch (code) {
#define MPX_ERRNO_NAME(name, value, msg)                                       \
  case value:                                                                  \
    return "MPX_" #name;
    MPX_ERRNO_MAP(MPX_ERRNO_NAME)
#undef MPX_ERRNO_NAME
  }
  return "MPX_EUNKNOWN";
}

/* Returns this thread's last detailed error message. */
const char *mpx_last_error(void) {
  return last_error;
}

/* Formats the detail message for this thread and returns code. The
 * arguments may include mpx_last_error() itself (a message wrapping the
 * previous one), so it is formatted aside first. */
int mpx__fail(int code, const char *fmt, ...) {
  char msg[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_error, msg, sizeof msg);
  error_seq++;
  return code;
}

/* Returns how many messages this thread has set so far. */
unsigned long mpx__error_seq(void) {
  return error_seq;
}

/* Makes the message of a failure of the public call named call start with
 * "call: ": the helpers' own text is kept behind that prefix, and when no
 * message was set since seq the code's sentence stands in for it (never an
 * older, unrelated message). Returns rc; 0 and positive values pass
 * through untouched. */
int mpx__fail_call(int rc, const char *call, unsigned long seq) {
  if (rc >= 0)
    return rc;
  if (error_seq == seq)
    return mpx__fail(rc, "%s: %s", call, mpx_strerror(rc));
  size_t n = strlen(call);
  if (strncmp(last_error, call, n) == 0 && last_error[n] == ':')
    return rc;
  return mpx__fail(rc, "%s: %s", call, last_error);
}

/* Empties this thread's message. */
void mpx__clear_error(void) {
  last_error[0] = 0;
}

/* Returns the version of the library loaded at run time. */
const char *mpx_version(void) {
  return MPX_VERSION_STRING;
}
