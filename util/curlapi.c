/* libcurl, opened on demand (see curlapi.h for why). */
#include <dlfcn.h>
#include <string.h>

#include "error.h"
#include "curlapi.h"

#define CURL_SONAME "libcurl.so.4"

int curl_api_load(struct curl_api *api, struct merr *err)
{
    if (curl_api_loaded(api))
        return 0;
    void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0, "cannot load %s: %s", CURL_SONAME, dlerror());
    struct curl_api a = { .handle = h };
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        { "curl_global_init", (void **)&a.global_init },
        { "curl_global_cleanup", (void **)&a.global_cleanup },
        { "curl_easy_init", (void **)&a.easy_init },
        { "curl_easy_setopt", (void **)&a.easy_setopt },
        { "curl_easy_perform", (void **)&a.easy_perform },
        { "curl_easy_getinfo", (void **)&a.easy_getinfo },
        { "curl_easy_cleanup", (void **)&a.easy_cleanup },
        { "curl_easy_reset", (void **)&a.easy_reset },
        { "curl_easy_strerror", (void **)&a.easy_strerror },
        { "curl_easy_escape", (void **)&a.easy_escape },
        { "curl_free", (void **)&a.free },
        { "curl_slist_append", (void **)&a.slist_append },
        { "curl_slist_free_all", (void **)&a.slist_free_all },
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (*syms[i].slot == NULL) {
            dlclose(h);
            return merr_set(err, MERR_UNSUPPORTED, 0, "%s has no %s", CURL_SONAME, syms[i].name);
        }
    }
    CURLcode cc = a.global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        dlclose(h);
        return merr_set(err, MERR_INTERNAL, 0, "cannot initialise libcurl (code %d)", (int)cc);
    }
    *api = a;
    return 0;
}

void curl_api_unload(struct curl_api *api)
{
    if (api == NULL || api->handle == NULL)
        return;
    api->global_cleanup();
    dlclose(api->handle);
    memset(api, 0, sizeof *api);
}
