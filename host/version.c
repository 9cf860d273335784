#include <curl/curl.h>
#include <expat.h>
#include <lua.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "lufa.h"
#include "version.h"

/* The versions running, not those compiled against: a shared library may have been upgraded since. */
void lufa_print_versions(FILE *out) {
  const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
  fprintf(out, "lufa %s\n", LUFA_VERSION);
  fprintf(out, "%s\n", LUA_RELEASE);
  fprintf(out, "libcurl %s (%s)\n", curl->version, curl->ssl_version ? curl->ssl_version : "no TLS");
  fprintf(out, "%s\n", OpenSSL_version(OPENSSL_VERSION));
  fprintf(out, "SQLite %s\n", sqlite3_libversion());
  fprintf(out, "%s\n", XML_ExpatVersion());
}
