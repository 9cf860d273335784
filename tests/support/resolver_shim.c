/* A stand-in for the system resolver that tests preload into lufa (LD_PRELOAD).
**
** Host names under ".test" (reserved for testing, RFC 6761) resolve to 127.0.0.1 without any resolver
** being asked, so a test can give its stand-ins names and still reach nothing but loopback. The first N
** lookups of such names, N from the variable LUFA_TEST_DNS_FAILURES, fail with EAI_AGAIN, as they do when
** the resolver cannot be reached. Every other name goes to the system's getaddrinfo. */
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static getaddrinfo_fn system_getaddrinfo;
static atomic_int failures_left;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
  const char *n = getenv("LUFA_TEST_DNS_FAILURES");
  system_getaddrinfo = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  atomic_store(&failures_left, n ? atoi(n) : 0);
}

static int is_test_name(const char *node) {
  size_t n = node ? strlen(node) : 0;
  if (n > 0 && node[n - 1] == '.') n--;  /* a fully qualified "x.test." */
  return n > 5 && strncasecmp(node + n - 5, ".test", 5) == 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
  pthread_once(&once, init);
  if (is_test_name(node)) {
    int left = atomic_load(&failures_left);
    /* lookups run on several threads at once: each failure is taken exactly once */
    while (left > 0 && !atomic_compare_exchange_weak(&failures_left, &left, left - 1)) {}
    if (left > 0) return EAI_AGAIN;
    node = "127.0.0.1";
  }
  if (!system_getaddrinfo) return EAI_FAIL;
  return system_getaddrinfo(node, service, hints, res);
}
