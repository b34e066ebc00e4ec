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
  return code;
}

void mpx__clear_error(void) {
  last_error[0] = 0;
}

const char *mpx_version(void) {
  return MPX_VERSION_STRING;
}
