/* The curlapi table (util/curlapi.h) over the libcurl the machine side links, for util/http.
 * (The engine fills the same table with dlopen() instead, to stay small while idle.) */
#ifndef MACHINE_CURL_LINKED_H
#define MACHINE_CURL_LINKED_H

struct curl_api;

/* Fills api with the linked functions; curl_global_init runs once per process. */
void curl_api_linked(struct curl_api *api);

#endif
