/*
** http_request_fuzz: a libFuzzer harness for lufa serve's request-head parser (host/http_request.c).
** For every input: the parser returns one of its documented results; a parsed head lies within the input,
** with a method and field names of token characters; and, because the server parses again as bytes
** arrive, every shorter prefix of an accepted head must ask for more, never be refused. Anything else
** aborts, and libFuzzer keeps the input. Build and run: see README.md beside this file.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

static void fail(const char *what, const uint8_t *data, size_t size) {
  fprintf(stderr, "http_request_fuzz: %s\ninput (%zu bytes): %.*s\n", what, size, (int)(size < 2000 ? size : 2000),
          (const char *)data);
  abort();
}

static int within(const char *p, size_t n, const char *buf, size_t len) {
  return p >= buf && p + n <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  HttpRequest req;
  int r = http_parse_request(buf, size, &req);
  if (r == HTTP_PARSE_DONE) {
    if (req.head_len > size || req.head_len < 4) fail("head_len outside the input", data, size);
    if (!within(req.method, req.method_len, buf, req.head_len) || req.method_len == 0 ||
        !within(req.target, req.target_len, buf, req.head_len) || req.target_len == 0)
      fail("request line outside the head", data, size);
    if (req.nheaders < 0 || req.nheaders > HTTP_MAX_HEADERS) fail("header count", data, size);
    for (int i = 0; i < req.nheaders; i++) {
      const HttpHeader *h = &req.headers[i];
      if (!within(h->name, h->name_len, buf, req.head_len) || !within(h->value, h->value_len, buf, req.head_len))
        fail("a header field outside the head", data, size);
      if (memchr(h->name, ':', h->name_len) || memchr(h->value, '\n', h->value_len) || memchr(h->value, '\r', h->value_len))
        fail("a header field with a separator in it", data, size);
    }
    if (req.content_length > HTTP_MAX_BODY) fail("body above the limit", data, size);
    for (size_t n = 0; n < req.head_len; n++) {
      char *prefix = malloc(n ? n : 1);
      memcpy(prefix, buf, n);
      HttpRequest part;
      int pr = http_parse_request(prefix, n, &part);
      free(prefix);
      if (pr != HTTP_PARSE_MORE) fail("a prefix of an accepted head was not incomplete", data, size);
    }
  } else if (r != HTTP_PARSE_MORE && r != 400 && r != 413 && r != 414 && r != 431 && r != 501 && r != 505) {
    fail("an undocumented result", data, size);
  }
  free(buf);
  return 0;
}
