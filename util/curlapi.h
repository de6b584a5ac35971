/* libcurl as a table of functions. The engine fills it with dlopen() at its first registry
 * request (curl_api_load): linked normally, libcurl loads its whole tree at start (GnuTLS via
 * librtmp, Kerberos, LDAP, libidn2, nghttp2...: about 3 MiB of an idle engine's resident
 * memory). The machine side, which links libcurl, fills it from the linked symbols
 * (core/curl_linked.c). Owned by the caller, never a global. */
#ifndef MACHINE_CURLAPI_H
#define MACHINE_CURLAPI_H

#include <curl/curl.h>

#include "cleanup.h"

struct merr;

struct curl_api {
    void *handle; /* the dlopen() handle; NULL for a linked table */
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    const char *(*easy_strerror)(CURLcode cc);
    char *(*easy_escape)(CURL *h, const char *s, int len);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

static inline int curl_api_loaded(const struct curl_api *api)
{
    return api->easy_init != NULL;
}

/* dlopen()s libcurl and runs curl_global_init once; a loaded api is left as is. Not
 * thread-safe: callers serialise (the image store calls it under its lock). */
MUST_CHECK int curl_api_load(struct curl_api *api, struct merr *err);
void curl_api_unload(struct curl_api *api);

#endif
