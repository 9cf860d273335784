/*
** check.h: the minimal assertion kit of lufa's C unit tests.
** Each test program calls CHECK* in plain functions, then returns check_summary() from main.
*/
#ifndef LUFA_CHECK_H
#define LUFA_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond) check_report((cond) != 0, __FILE__, __LINE__, #cond)
#define CHECK_STR(got, want) check_str((got), (want), __FILE__, __LINE__)
#define CHECK_INT(got, want) check_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got)

static inline int check_report(int ok, const char *file, int line, const char *what) {
  check_count++;
  if (!ok) {
    check_failures++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  }
  return ok;
}

static inline int check_str(const char *got, const char *want, const char *file, int line) {
  int ok = got != NULL && strcmp(got, want) == 0;
  check_count++;
  if (!ok) {
    check_failures++;
    fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", file, line, want, got ? got : "(null)");
  }
  return ok;
}

static inline int check_int(long long got, long long want, const char *file, int line, const char *what) {
  check_count++;
  if (got != want) {
    check_failures++;
    fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", file, line, what, want, got);
    return 0;
  }
  return 1;
}

/* Prints "N passed, N failed" and gives the exit status. */
static inline int check_summary(void) {
  printf("%d passed, %d failed\n", check_count - check_failures, check_failures);
  return check_failures ? 1 : 0;
}

#endif
