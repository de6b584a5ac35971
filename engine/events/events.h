/* The engine's event bus (GET /events): a bounded in-memory ring of docker-shaped event
 * objects fed by the container manager, the image store and the volume store, read by
 * subscribers that keep a cursor. No globals: the bus is a context object. Thread-safe. */
#ifndef MACHINE_ENGINE_EVENTS_H
#define MACHINE_ENGINE_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

struct merr;
struct api_filters;
struct evt_bus;

/* capacity: events kept (older ones are dropped); 0: 1024. */
struct evt_bus *evt_bus_new(size_t capacity);
void evt_bus_free(struct evt_bus *b);
DEFINE_CLEANUP(struct evt_bus, evt_bus_free)

/* Records an event now. type "container"|"image"|"volume"|"network"; attrs (stolen, may be
 * NULL) becomes Actor.Attributes. b may be NULL (no-op). */
void evt_emit(struct evt_bus *b, const char *type, const char *action, const char *id,
              json_t *attrs);
/* The same with an explicit time (tests). */
void evt_emit_at(struct evt_bus *b, const char *type, const char *action, const char *id,
                 json_t *attrs, int64_t time_ns);

/* The cursor a new live subscriber starts from (events after now). */
uint64_t evt_cursor_now(struct evt_bus *b);
/* The oldest cursor still held (replay for `since`). */
uint64_t evt_cursor_oldest(struct evt_bus *b);
/* Copies up to max events with sequence >= *cursor into out (new references) and advances
 * *cursor; waits up to timeout_ms for one when there is none. Returns how many. */
size_t evt_read(struct evt_bus *b, uint64_t *cursor, json_t **out, size_t max, int timeout_ms);

/* ---- pure helpers ---- */
/* docker's event object: {status, id, from, Type, Action, Actor{ID, Attributes}, scope,
 * time, timeNano}. */
json_t *evt_build(const char *type, const char *action, const char *id, json_t *attrs,
                  int64_t time_ns);
/* Whether ev passes the filters (type, container, image, volume, network, event, label). */
bool evt_filter_match(const json_t *ev, const struct api_filters *f);
/* MERR_INVALID for a filter name /events does not know. */
int evt_filters_validate(const struct api_filters *f, struct merr *err) MUST_CHECK;
/* since/until query values: "1700000000", "1700000000.5", "1700000000.000000001" → ns.
 * MERR_INVALID otherwise. */
int evt_parse_time(const char *s, int64_t *ns, struct merr *err) MUST_CHECK;

#endif
