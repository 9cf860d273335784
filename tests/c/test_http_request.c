/*
** The request-head parser of lufa serve: what it accepts, the status of what it refuses, the same answer
** however the bytes arrive, and a seeded mutation fuzz (each input in a heap block of its exact size, so
** AddressSanitizer reports any read past it).
*/
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http_request.h"

static int parse(const char *text, HttpRequest *req) {
  size_t n = strlen(text);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, text, n);
  int r = http_parse_request(copy, n, req);
  free(copy);
  return r;
}

static const char *GOOD = "POST /runs/abc/rerun?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8470\r\nContent-Length: 14\r\n"
  "Cookie: lufa_token=abc\r\nX-Empty:\r\n\r\nfrom_failure=1";

static void test_accepts(void) {
  HttpRequest req;
  char *copy = strdup(GOOD);
  CHECK_INT(http_parse_request(copy, strlen(copy), &req), HTTP_PARSE_DONE);
  CHECK(req.method_len == 4 && memcmp(req.method, "POST", 4) == 0);
  CHECK(req.target_len == 19 && memcmp(req.target, "/runs/abc/rerun?x=1", 19) == 0);
  CHECK_INT(req.minor, 1);
  CHECK_INT(req.nheaders, 4);
  CHECK_INT(req.content_length, 14);
  CHECK_INT(req.head_len, strlen(GOOD) - 14);
  CHECK(req.headers[3].value_len == 0);
  CHECK(req.headers[1].value_len == 2 && memcmp(req.headers[1].value, "14", 2) == 0);
  free(copy);
  CHECK_INT(parse("GET / HTTP/1.0\r\n\r\n", &req), HTTP_PARSE_DONE);   /* 1.0 needs no Host */
  CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x \t\r\n\r\n", &req), HTTP_PARSE_DONE);
  CHECK(req.headers[0].value_len == 1);                                 /* trailing spaces trimmed */
}

static void test_more(void) {
  HttpRequest req;
  CHECK_INT(parse("", &req), HTTP_PARSE_MORE);
  CHECK_INT(parse("GET / HT", &req), HTTP_PARSE_MORE);
  CHECK_INT(parse("GE", &req), HTTP_PARSE_MORE);
  CHECK_INT(parse("\x16\x03\x01\x02", &req), 400);   /* a TLS hello is refused before its end */
  CHECK_INT(parse("GET /a\x01", &req), 400);
  CHECK_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n", &req), HTTP_PARSE_MORE);
  /* every prefix of a good head asks for more; the whole head is done */
  size_t head = strlen(GOOD) - 14;
  for (size_t i = 0; i < head; i++) {
    char *part = malloc(i ? i : 1);
    memcpy(part, GOOD, i);
    int r = http_parse_request(part, i, &req);
    if (!CHECK_INT(r, HTTP_PARSE_MORE)) fprintf(stderr, "  prefix of %zu bytes\n", i);
    free(part);
  }
}

static void test_refuses(void) {
  static const struct { const char *text; int status; } cases[] = {
    {"GET /\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
    {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
    {"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n\r\n", 400},                                   /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"GET / HTTP/1.1\nHost: x\r\n\r\n", 400},                          /* bare LF */
    {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nA: \x7f\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
    {"VERYLONGMETHODNAMEXX / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"\r\n\r\n", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    HttpRequest req;
    if (!CHECK_INT(parse(cases[i].text, &req), cases[i].status)) fprintf(stderr, "  case %zu\n", i);
  }
  /* too long: a head without its end at the limit; a first line longer than the limit */
  char *big = malloc(HTTP_MAX_HEAD + 10);
  memset(big, 'a', HTTP_MAX_HEAD + 10);
  memcpy(big, "GET /", 5);
  HttpRequest req;
  CHECK_INT(http_parse_request(big, HTTP_MAX_HEAD + 10, &req), 414);
  memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
  CHECK_INT(http_parse_request(big, HTTP_MAX_HEAD + 10, &req), 431);
  free(big);
  /* more header fields than the limit */
  char many[HTTP_MAX_HEADERS * 8 + 64];
  size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < HTTP_MAX_HEADERS; i++) n += (size_t)snprintf(many + n, sizeof many - n, "A%d: b\r\n", i % 10);
  snprintf(many + n, sizeof many - n, "\r\n");
  CHECK_INT(parse(many, &req), 431);
}

/* A small deterministic fuzz: mutations of good heads never crash and answer one of the documented results. */
static void test_fuzz(void) {
  static const char *seeds[] = {
    "GET /runs?status=Failed&pipeline=x HTTP/1.1\r\nHost: 127.0.0.1:1\r\nCookie: a=b; c=d\r\n\r\n",
    "POST /api/runs/x/rerun HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "GET / HTTP/1.0\r\n\r\n",
  };
  static const char bytes[] = {'\r', '\n', ' ', ':', '\t', '\0', 'A', '/', '\x7f', '\xff', '1', '-'};
  unsigned long seed = 12345;
  int done = 0, refused = 0, more = 0, odd = 0;
  for (int round = 0; round < 30000; round++) {
    const char *s = seeds[round % 3];
    size_t n = strlen(s);
    char *buf = malloc(n + 8);
    memcpy(buf, s, n);
    int edits = 1 + round % 4;
    for (int k = 0; k < edits; k++) {
      seed = seed * 6364136223846793005UL + 1442695040888963407UL;
      size_t at = (size_t)(seed >> 33) % n;
      int what = (int)((seed >> 20) % 3);
      if (what == 0) buf[at] = bytes[(seed >> 8) % sizeof bytes];
      else if (what == 1) buf[at] = (char)(seed >> 40);
      else if (n > 1) { memmove(buf + at, buf + at + 1, n - at - 1); n--; }   /* delete a byte */
    }
    char *exact = malloc(n);
    memcpy(exact, buf, n);
    HttpRequest req;
    int r = http_parse_request(exact, n, &req);
    if (r == HTTP_PARSE_DONE) {
      done++;
      if (req.head_len > n || req.nheaders > HTTP_MAX_HEADERS || req.content_length > HTTP_MAX_BODY) odd++;
    } else if (r == HTTP_PARSE_MORE) more++;
    else if (r == 400 || r == 413 || r == 414 || r == 431 || r == 501 || r == 505) refused++;
    else odd++;
    free(exact);
    free(buf);
  }
  CHECK_INT(odd, 0);
  CHECK(done > 0 && refused > 0 && more > 0);   /* the mutations reach all three outcomes */
  printf("fuzz: %d parsed, %d refused, %d incomplete\n", done, refused, more);
}

int main(void) {
  test_accepts();
  test_more();
  test_refuses();
  test_fuzz();
  return check_summary();
}
