/* Docker API routes for containers, exec and images: thin HTTP adapters over the container
 * manager and the image store. */
#ifndef MACHINE_ENGINE_HANDLERS_H
#define MACHINE_ENGINE_HANDLERS_H

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

struct api_router;
struct ctr_manager;
struct image_store;
struct registry_config;
struct net_service;
struct merr;
struct vol_store;
struct evt_bus;

struct engine_services {
    struct ctr_manager *containers;
    struct image_store *images;
    const struct registry_config *registry;
    struct vol_store *volumes;
    struct evt_bus *events;
    struct net_service *net;
};

/* Every route below and api_system_register's (routes.c). */
struct api_system;
int handlers_register_all(struct api_router *r, const struct api_system *sys,
                          struct engine_services *s, struct merr *err) MUST_CHECK;

int handlers_register_containers(struct api_router *r, struct engine_services *s,
                                 struct merr *err) MUST_CHECK;
int handlers_register_exec(struct api_router *r, struct engine_services *s,
                           struct merr *err) MUST_CHECK;
int handlers_register_networks(struct api_router *r, struct engine_services *s,
                               struct merr *err) MUST_CHECK;
int handlers_register_images(struct api_router *r, struct engine_services *s,
                             struct merr *err) MUST_CHECK;
/* /volumes, /events and /containers/{id}/archive. */
int handlers_register_storage(struct api_router *r, struct engine_services *s,
                              struct merr *err) MUST_CHECK;

/* docker diff, export, commit, history (commit.c). */
int handlers_register_commit(struct api_router *r, struct engine_services *s,
                             struct merr *err) MUST_CHECK;
/* POST /build: the classic builder (build.c). */
int handlers_register_build(struct api_router *r, struct engine_services *s,
                            struct merr *err) MUST_CHECK;
/* POST /images/create?fromSrc=...: docker import (commit.c); called by the images route. */
struct api_request;
int handlers_image_import(struct api_request *req, struct engine_services *s,
                          struct merr *err) MUST_CHECK;
/* GET /containers/json and /images/json with their filters (lists.c). */
int handlers_register_lists(struct api_router *r, struct engine_services *s,
                            struct merr *err) MUST_CHECK;
/* Swarm, service, task, node, secret, config (503) and plugin routes (swarm.c). */
int handlers_register_swarm(struct api_router *r, struct engine_services *s,
                            struct merr *err) MUST_CHECK;
/* pause, unpause, rename, update (lifecycle.c). */
int handlers_register_lifecycle(struct api_router *r, struct engine_services *s,
                                struct merr *err) MUST_CHECK;
/* /containers/prune, /images/prune, /build/prune (prune.c) and GET /system/df (system_df.c). */
int handlers_register_prune(struct api_router *r, struct engine_services *s,
                            struct merr *err) MUST_CHECK;
/* The build cache (buildcache.c): GET /system/df's BuildCache entries (images: the image
 * entries) and POST /build/prune. */
struct json_t *handlers_build_cache_usage(struct engine_services *s, const struct json_t *images,
                                          struct merr *err) MUST_CHECK;
int handlers_build_prune(struct api_request *req, struct engine_services *s,
                         struct merr *err) MUST_CHECK;
int handlers_register_system_df(struct api_router *r, struct engine_services *s,
                                struct merr *err) MUST_CHECK;
/* GET /containers/{id}/json?size=1: SizeRw and SizeRootFs added to an inspect body (lists.c). */
struct json_t;
void handlers_add_sizes(struct engine_services *s, struct json_t *inspect);
/* GET /containers/{id}/stats (stats.c). */
int handlers_register_stats(struct api_router *r, struct engine_services *s,
                            struct merr *err) MUST_CHECK;
/* Fills an inspect body as dockerd's: HostConfig defaults, GraphDriver.Data (inspect.c). */
void handlers_inspect_complete(struct engine_services *s, struct json_t *inspect);
/* GET /distribution/{name}/json, GET /images/search (distribution.c). */
int handlers_register_distribution(struct api_router *r, struct engine_services *s,
                                   struct merr *err) MUST_CHECK;
/* POST /images/{name}/push and POST /auth (push.c). */
int handlers_register_push(struct api_router *r, struct engine_services *s,
                           struct merr *err) MUST_CHECK;
/* The image store's GET /images/json objects, as a JSON array (lists.c). */
struct json_t *handlers_image_entries(struct engine_services *s, struct merr *err) MUST_CHECK;

int handlers_register_archive(struct api_router *r, struct engine_services *s,
                              struct merr *err) MUST_CHECK;

/* struct ctr_image_source.resolve over the image store (data = struct image_store *). */
#include <jansson.h>
#include <sys/types.h>
int handlers_image_resolve(void *data, const char *ref, char **image_id, json_t **config,
                           char ***lowerdirs, struct merr *err) MUST_CHECK;

/* Copies a live output subscription (stdcopy frames on sub_fd) to a hijacked or chunked
 * connection until the subscription ends, the client goes or the server stops. With stdin_fd,
 * the client's input is written there (half-close = stdin EOF → on_stdin_eof). Pure plumbing
 * shared by attach and logs -f. */
struct api_request;
typedef void (*stdin_eof_fn)(void *data);
/* Attach's detach keys: the client's input is scanned for the sequence, which ends the pump
 * (the container goes on); a partial match is held back, then passed on if it breaks. */
struct detach_keys {
    unsigned char keys[16];
    size_t n, pos;
};
/* Writes buf to fd minus the detach sequence (held back while it may still be one); true once
 * the whole sequence was typed. Shared by attach and exec start. */
bool handlers_filter_detach(struct detach_keys *dk, int fd, const char *buf, ssize_t n);
/* Which frames go out and how (attach's stdout/stderr, logs' --timestamps and --details). */
struct pump_output {
    bool tty;
    bool stdout_, stderr_;
    bool timestamps, details;
    int64_t until_ns; /* logs -f --until: the pump ends then (0: never) */
};
int handlers_pump(struct api_request *req, int sub_fd, const struct pump_output *out,
                  int stdin_fd, stdin_eof_fn on_stdin_eof, void *eof_data,
                  struct detach_keys *dk, struct merr *err) MUST_CHECK;

/* A JSON-lines progress stream (load, push) whose 200 goes out with the first line: before it,
 * a failure is an HTTP error status, after it a message in the stream, as dockerd answers.
 * handlers_stream_line is the progress callback (opaque: the struct). */
struct handlers_lines {
    struct api_request *req;
    bool begun;
    bool gone;
};
int handlers_stream_line(const char *line, void *opaque);

#endif
