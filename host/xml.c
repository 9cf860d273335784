/*
** lufa.core.xml: expat into a plain Lua tree.
**
** parse(text [, source]) → root element, or nil, err (kind "xml"). An element is a table
**   { tag = "Name", attrs = { name = value, ... }, text = "character data directly inside", [1..n] = child elements }
** Namespaces are not processed (a prefixed name stays "p:Name"); DTDs are refused, so no entity can expand.
**
** The expat handlers only build a C tree (no Lua call, so nothing can longjmp through expat); a handler that
** cannot allocate or finds the document too deep stops the parser with XML_StopParser. The tree becomes Lua
** tables after XML_Parse has returned. The parser and the tree hang off a userdata whose __gc frees them, so a
** memory error while building the Lua tables leaks nothing.
*/
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <lauxlib.h>

#include "error.h"
#include "xml.h"

#define XML_DOC_MT "lufa.core.xml.document"
#define XML_MAX_DEPTH 256

typedef struct XmlNode {
  char *tag;
  char **attrs;            /* name, value, name, value, ..., NULL */
  char *text;
  size_t text_len, text_cap;
  size_t nchildren;
  struct XmlNode *parent, *first, *last, *next;
} XmlNode;

typedef enum { XML_OK, XML_NOMEM, XML_TOO_DEEP, XML_DTD } XmlFault;

typedef struct {
  XML_Parser parser;
  XmlNode *root;
  XmlNode *current;
  int depth;
  XmlFault fault;
} XmlDoc;

/* ---- the C tree ---- */

static void node_free(XmlNode *n) {
  while (n) {
    XmlNode *next = n->next;
    node_free(n->first);
    free(n->tag);
    if (n->attrs) {
      for (char **a = n->attrs; *a; a++) free(*a);
      free(n->attrs);
    }
    free(n->text);
    free(n);
    n = next;
  }
}

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static void doc_stop(XmlDoc *d, XmlFault fault) {
  if (d->fault == XML_OK) d->fault = fault;
  XML_StopParser(d->parser, XML_FALSE);
}

static XmlNode *node_new(const XML_Char *name, const XML_Char **atts) {
  XmlNode *n = calloc(1, sizeof *n);
  if (n == NULL) return NULL;
  size_t count = 0;
  while (atts[count]) count++;
  n->tag = dup_string(name);
  n->attrs = calloc(count + 1, sizeof *n->attrs);
  if (n->tag == NULL || n->attrs == NULL) {
    node_free(n);
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    n->attrs[i] = dup_string(atts[i]);
    if (n->attrs[i] == NULL) {
      node_free(n);
      return NULL;
    }
  }
  return n;
}

/* ---- expat handlers: C only ---- */

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
  XmlDoc *d = ud;
  if (d->depth >= XML_MAX_DEPTH) {
    doc_stop(d, XML_TOO_DEEP);
    return;
  }
  XmlNode *n = node_new(name, atts);
  if (n == NULL) {
    doc_stop(d, XML_NOMEM);
    return;
  }
  if (d->current) {
    n->parent = d->current;
    if (d->current->last) d->current->last->next = n;
    else d->current->first = n;
    d->current->last = n;
    d->current->nchildren++;
  } else {
    d->root = n;
  }
  d->current = n;
  d->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  XmlDoc *d = ud;
  (void)name;  /* expat has already checked that it matches */
  if (d->current) d->current = d->current->parent;
  d->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  XmlDoc *d = ud;
  XmlNode *n = d->current;
  if (n == NULL || len <= 0) return;
  size_t need = n->text_len + (size_t)len + 1;
  if (need > n->text_cap) {
    size_t cap = n->text_cap ? n->text_cap : 64;
    while (cap < need) cap *= 2;
    char *t = realloc(n->text, cap);
    if (t == NULL) {
      doc_stop(d, XML_NOMEM);
      return;
    }
    n->text = t;
    n->text_cap = cap;
  }
  memcpy(n->text + n->text_len, s, (size_t)len);
  n->text_len += (size_t)len;
  n->text[n->text_len] = '\0';
}

/* A document type declaration could declare entities; Blob Storage never sends one, so refuse it. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset) {
  (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
  doc_stop(ud, XML_DTD);
}

/* ---- the document userdata ---- */

static void doc_release(XmlDoc *d) {
  if (d->parser) {
    XML_ParserFree(d->parser);
    d->parser = NULL;
  }
  node_free(d->root);
  d->root = d->current = NULL;
}

static int doc_gc(lua_State *L) {
  doc_release((XmlDoc *)luaL_checkudata(L, 1, XML_DOC_MT));
  return 0;
}

/* ---- C tree → Lua tables ---- */

static void push_node(lua_State *L, const XmlNode *n) {
  luaL_checkstack(L, 6, "XML document too deep");
  lua_createtable(L, (int)(n->nchildren < 1000000 ? n->nchildren : 0), 3);
  lua_pushstring(L, n->tag);
  lua_setfield(L, -2, "tag");
  lua_newtable(L);
  for (char **a = n->attrs; a && a[0] && a[1]; a += 2) {
    lua_pushstring(L, a[1]);
    lua_setfield(L, -2, a[0]);
  }
  lua_setfield(L, -2, "attrs");
  lua_pushlstring(L, n->text ? n->text : "", n->text_len);
  lua_setfield(L, -2, "text");
  lua_Integer i = 0;
  for (const XmlNode *c = n->first; c; c = c->next) {
    push_node(L, c);
    lua_rawseti(L, -2, ++i);
  }
}

/** parse(text [, source]) → root element, or nil, err. */
static int xml_parse(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *source = luaL_optstring(L, 2, NULL);
  const char *prefix = source ? source : "";
  const char *sep = source ? ": " : "";
  XmlDoc *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, XML_DOC_MT);
  d->parser = XML_ParserCreate("UTF-8");
  if (d->parser == NULL) return luaL_error(L, "not enough memory");
  XML_SetUserData(d->parser, d);
  XML_SetElementHandler(d->parser, on_start, on_end);
  XML_SetCharacterDataHandler(d->parser, on_text);
  XML_SetStartDoctypeDeclHandler(d->parser, on_doctype);
  XML_SetParamEntityParsing(d->parser, XML_PARAM_ENTITY_PARSING_NEVER);

  /* expat takes an int length: feed large documents in pieces */
  int ok = 1;
  size_t off = 0;
  do {
    size_t piece = len - off > (1u << 30) ? (1u << 30) : len - off;
    int final = off + piece == len;
    if (XML_Parse(d->parser, text + off, (int)piece, final) != XML_STATUS_OK) {
      ok = 0;
      break;
    }
    off += piece;
  } while (off < len);

  if (!ok) {
    lua_Integer line = (lua_Integer)XML_GetCurrentLineNumber(d->parser);
    lua_Integer column = (lua_Integer)XML_GetCurrentColumnNumber(d->parser) + 1;
    XmlFault fault = d->fault;
    const char *why = XML_ErrorString(XML_GetErrorCode(d->parser));
    doc_release(d);
    switch (fault) {
      case XML_NOMEM: return luaL_error(L, "not enough memory");
      case XML_TOO_DEEP:
        lufa_error_fail(L, "xml", "depth", "%s%sline %d, column %d: elements nested deeper than %d", prefix, sep,
                        (int)line, (int)column, XML_MAX_DEPTH);
        break;
      case XML_DTD:
        lufa_error_fail(L, "xml", "unsupported", "%s%sline %d, column %d: document type declarations are not accepted",
                        prefix, sep, (int)line, (int)column);
        break;
      default:
        lufa_error_fail(L, "xml", "syntax", "%s%sline %d, column %d: %s", prefix, sep, (int)line, (int)column, why);
    }
    lufa_error_setint(L, -1, "line", line);
    lufa_error_setint(L, -1, "column", column);
    return 2;
  }
  if (d->root == NULL) {  /* expat reports an empty document itself; kept for safety */
    doc_release(d);
    return lufa_error_fail(L, "xml", "syntax", "%s%sno root element", prefix, sep);
  }
  push_node(L, d->root);
  doc_release(d);
  return 1;
}

int luaopen_lufa_core_xml(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"parse", xml_parse},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, XML_DOC_MT)) {
    lua_pushcfunction(L, doc_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
