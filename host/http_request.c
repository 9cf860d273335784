/*
** The request-head parser of lufa's local server (see http_request.h). Strict where RFC 9112 lets a
** server be: CRLF line ends only, no obsolete line folding, no bare CR or control bytes, one request line
** shape (method SP target SP HTTP/1.x), Content-Length as digits only and never two different ones.
*/
#include <string.h>

#include "http_request.h"

/* tchar of RFC 9110: the characters of a method or a field name. */
static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int name_is(const HttpHeader *h, const char *name) {
  size_t n = strlen(name);
  if (h->name_len != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = h->name[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != name[i]) return 0;
  }
  return 1;
}

/* The end of the head (index just past CRLF CRLF) within the first `len` bytes, or 0. */
static size_t head_end(const char *buf, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') return i + 1;
  return 0;
}

static int parse_request_line(const char *p, const char *eol, HttpRequest *req) {
  const char *s = p;
  while (p < eol && is_tchar((unsigned char)*p)) p++;
  if (p == s || p == eol || *p != ' ') return 400;
  if ((size_t)(p - s) > HTTP_MAX_METHOD) return 400;
  req->method = s;
  req->method_len = (size_t)(p - s);
  s = ++p;
  while (p < eol && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f) p++;
  if (p == s || p == eol || *p != ' ') return 400;
  req->target = s;
  req->target_len = (size_t)(p - s);
  p++;
  if (eol - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
      p[7] < '0' || p[7] > '9')
    return 400;
  if (p[5] != '1') return 505;
  req->minor = p[7] - '0';
  return 0;
}

static int parse_content_length(const HttpHeader *h, HttpRequest *req, int *seen) {
  size_t n = 0;
  if (h->value_len == 0) return 400;
  for (size_t i = 0; i < h->value_len; i++) {
    char c = h->value[i];
    if (c < '0' || c > '9') return 400;
    n = n * 10 + (size_t)(c - '0');
    if (n > HTTP_MAX_BODY) return 413;
  }
  if (*seen && n != req->content_length) return 400;
  *seen = 1;
  req->content_length = n;
  return 0;
}

/* Whether an unfinished first line can still become a request line (a TLS hello or binary noise cannot). */
static int plausible_start(const char *p, size_t len) {
  size_t i = 0;
  while (i < len && is_tchar((unsigned char)p[i])) i++;
  if (i > HTTP_MAX_METHOD) return 0;
  if (i == len) return 1;
  if (i == 0 || p[i] != ' ') return 0;
  for (i++; i < len && p[i] != ' '; i++)
    if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) return 0;
  return 1;
}

int http_parse_request(const char *buf, size_t len, HttpRequest *req) {
  size_t end = head_end(buf, len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
  if (end == 0) {
    if (len < HTTP_MAX_HEAD) {
      /* refuse early what can never become a request: a first line that is not a request line */
      const char *eol = memchr(buf, '\n', len);
      if (eol && (eol == buf || eol[-1] != '\r')) return 400;
      if (eol) {
        int bad = parse_request_line(buf, eol - 1, req);
        if (bad) return bad;
      } else if (!plausible_start(buf, len)) {
        return 400;
      }
      return HTTP_PARSE_MORE;
    }
    return memchr(buf, '\n', HTTP_MAX_HEAD) ? 431 : 414;
  }
  memset(req, 0, sizeof *req);
  const char *p = buf, *stop = buf + end - 2;   /* stop: the final CRLF */
  const char *eol = memchr(p, '\r', (size_t)(stop - p));
  if (eol == NULL || eol[1] != '\n') return 400;
  int bad = parse_request_line(p, eol, req);
  if (bad) return bad;
  p = eol + 2;
  int seen_length = 0, seen_host = 0;
  while (p < stop) {
    eol = memchr(p, '\r', (size_t)(stop - p));
    if (eol == NULL || eol[1] != '\n') return 400;
    if (memchr(p, '\n', (size_t)(eol - p))) return 400;     /* a bare LF */
    if (req->nheaders == HTTP_MAX_HEADERS) return 431;
    HttpHeader *h = &req->headers[req->nheaders];
    const char *s = p;
    while (p < eol && is_tchar((unsigned char)*p)) p++;
    if (p == s || p == eol || *p != ':') return 400;        /* also refuses obsolete folding (leading space) */
    h->name = s;
    h->name_len = (size_t)(p - s);
    p++;
    while (p < eol && (*p == ' ' || *p == '\t')) p++;
    const char *v = p, *vend = eol;
    for (const char *q = v; q < eol; q++)
      if (!is_field_char((unsigned char)*q)) return 400;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    h->value = v;
    h->value_len = (size_t)(vend - v);
    req->nheaders++;
    if (name_is(h, "content-length")) {
      bad = parse_content_length(h, req, &seen_length);
      if (bad) return bad;
    } else if (name_is(h, "transfer-encoding")) {
      return 501;
    } else if (name_is(h, "host")) {
      if (seen_host++) return 400;
    }
    p = eol + 2;
  }
  if (req->minor >= 1 && !seen_host) return 400;            /* RFC 9112 3.2: HTTP/1.1 needs Host */
  req->head_len = end;
  return HTTP_PARSE_DONE;
}

const char *http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}
