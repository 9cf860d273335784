/*
** Parsing of an HTTP/1.x request head (request line and header fields), for lufa's local server.
** Pure and bounded: it reads only the bytes it is given, allocates nothing, and refuses anything longer
** than the limits below, so a client cannot make the server hold more than one head's worth of memory.
*/
#ifndef LUFA_HTTP_REQUEST_H
#define LUFA_HTTP_REQUEST_H

#include <stddef.h>

#define HTTP_MAX_HEAD 16384          /* request line + header fields + the blank line */
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_METHOD 16
#define HTTP_MAX_BODY (1024 * 1024)  /* Content-Length above this: 413 */

typedef struct {
  const char *name, *value;   /* pointers into the parsed buffer; not NUL-terminated */
  size_t name_len, value_len; /* the value without surrounding spaces and tabs */
} HttpHeader;

typedef struct {
  const char *method, *target;
  size_t method_len, target_len;
  int minor;                  /* HTTP/1.minor */
  HttpHeader headers[HTTP_MAX_HEADERS];
  int nheaders;
  size_t head_len;            /* bytes up to and including the blank line */
  size_t content_length;      /* 0 when absent */
} HttpRequest;

#define HTTP_PARSE_MORE 0   /* the head is not complete yet: read more */
#define HTTP_PARSE_DONE 1   /* req is filled in */

/* Parses the head at the start of buf[0..len). Returns HTTP_PARSE_MORE, HTTP_PARSE_DONE, or the HTTP status
** to answer with when the request is unacceptable: 400 (malformed), 413 (body too large), 414 (target too
** long), 431 (head too large), 501 (Transfer-Encoding, which this server does not implement), 505 (not
** HTTP/1.x). */
int http_parse_request(const char *buf, size_t len, HttpRequest *req);

/* The reason phrase of a status this server sends ("Bad Request", ...); "Error" for others. */
const char *http_reason(int status);

#endif
