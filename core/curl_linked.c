#include "curl_linked.h"

#include <pthread.h>

#include "curlapi.h"

static void global_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void curl_api_linked(struct curl_api *api)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init_once);
    *api = (struct curl_api){
        .handle = NULL,
        .global_init = curl_global_init,
        .global_cleanup = curl_global_cleanup,
        .easy_init = curl_easy_init,
        .easy_setopt = curl_easy_setopt,
        .easy_perform = curl_easy_perform,
        .easy_getinfo = curl_easy_getinfo,
        .easy_cleanup = curl_easy_cleanup,
        .easy_reset = curl_easy_reset,
        .easy_strerror = curl_easy_strerror,
        .easy_escape = curl_easy_escape,
        .free = curl_free,
        .slist_append = curl_slist_append,
        .slist_free_all = curl_slist_free_all,
    };
}
