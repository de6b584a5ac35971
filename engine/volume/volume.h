/* Volumes and container mounts: docker's mount specifications (HostConfig.Binds, .Mounts,
 * .Tmpfs, the image's VOLUME entries) parsed into one list, the local volume store
 * (<root>/<name>/_data + a JSON record per volume) and the copy-up of image content into a
 * fresh volume. The parsers are pure; the store is thread-safe. */
#ifndef MACHINE_ENGINE_VOLUME_H
#define MACHINE_ENGINE_VOLUME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct merr;
struct mlog;
struct evt_bus;

/* ---- mount specifications (mountspec.c, pure) ---- */

enum mnt_type { MNT_BIND, MNT_VOLUME, MNT_TMPFS };

struct mnt_spec {
    enum mnt_type type;
    char *source;      /* bind: absolute host path; volume: name (NULL: anonymous); tmpfs: NULL */
    char *target;      /* absolute path inside the container, cleaned */
    bool readonly;
    bool create_source; /* bind from -v: a missing host directory is created */
    bool nocopy;        /* volume: no copy-up of image content */
    char *mode;         /* -v mode text as given ("ro,Z"), "" when none */
    char *propagation;  /* bind: "rprivate" unless given */
    char *tmpfs_options; /* tmpfs: mount options ("size=65536k,mode=1777"), "" when none */
    json_t *labels;      /* volume: VolumeOptions.Labels, given to the volume it creates; NULL */
};

struct mnt_list {
    struct mnt_spec *items;
    size_t n;
};
void mnt_list_release(struct mnt_list *l);

/* One -v / HostConfig.Binds entry: "name:/dst[:opts]", "/host:/dst[:opts]", "/dst".
 * MERR_INVALID with docker's wording. */
int mnt_parse_bind(const char *text, struct mnt_spec *out, struct merr *err) MUST_CHECK;
/* One HostConfig.Mounts entry ({Type, Source, Target, ReadOnly, BindOptions, VolumeOptions,
 * TmpfsOptions}). The bind source's existence is checked by the caller. */
int mnt_parse_mount(const json_t *obj, struct mnt_spec *out, struct merr *err) MUST_CHECK;
/* The whole set a container gets: Binds, Mounts, Tmpfs, then the image's Volumes (object of
 * paths) as anonymous volumes where nothing else is mounted. Duplicate targets are refused
 * ("Duplicate mount point: /x"). host_config and image_volumes may be NULL. */
int mnt_list_from_config(const json_t *host_config, const json_t *image_volumes,
                         struct mnt_list *out, struct merr *err) MUST_CHECK;
/* Tmpfs option text → mount(2) flags and data ("rw,noexec,size=64m" → MS_NOEXEC,
 * "size=64m"). docker's defaults (nosuid, nodev, noexec) apply unless overridden. */
int mnt_tmpfs_options(const char *text, unsigned long *flags, char **data,
                      struct merr *err) MUST_CHECK;
/* "/a//b/../c/" → "/a/c"; NULL unless absolute. */
char *mnt_clean_path(const char *path);
/* Volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
bool mnt_volume_name_ok(const char *name);

/* The container record's mounts, and inspect's "Mounts" entries. */
json_t *mnt_spec_to_json(const struct mnt_spec *m);
int mnt_spec_from_json(const json_t *j, struct mnt_spec *out, struct merr *err) MUST_CHECK;
void mnt_spec_release(struct mnt_spec *m);

/* ---- the local volume store (store.c) ---- */

struct vol_store;
struct vol_store_config {
    const char *root; /* <data-root>/volumes */
    const struct mlog *log;
    struct evt_bus *events; /* may be NULL */
};
int vol_store_new(const struct vol_store_config *cfg, struct vol_store **out,
                  struct merr *err) MUST_CHECK;
void vol_store_free(struct vol_store *s);
DEFINE_CLEANUP(struct vol_store, vol_store_free)

/* docker volume create: an existing volume of that name is returned as is. name NULL or "":
 * a random 64-hex name (anonymous when anonymous is set). Returns the inspect JSON. */
json_t *vol_create(struct vol_store *s, const char *name, const json_t *labels,
                   const json_t *options, bool anonymous, struct merr *err) MUST_CHECK;
json_t *vol_inspect(struct vol_store *s, const char *name, struct merr *err) MUST_CHECK;
/* All volumes' inspect JSON; filters: name, label, dangling, driver (NULL: all). */
struct api_filters;
json_t *vol_list(struct vol_store *s, const struct api_filters *f, struct merr *err) MUST_CHECK;
/* MERR_EXISTS "remove NAME: volume is in use - [ID, ...]", even with force; force makes a
 * missing volume no error. */
int vol_remove(struct vol_store *s, const char *name, bool force, struct merr *err) MUST_CHECK;
/* Removes unused volumes (anonymous only unless all); {VolumesDeleted, SpaceReclaimed}. */
json_t *vol_prune(struct vol_store *s, bool all, const struct api_filters *f,
                  struct merr *err) MUST_CHECK;

/* References from containers (rebuilt at engine start from the container records). */
void vol_ref(struct vol_store *s, const char *name, const char *ctr_id);
void vol_unref(struct vol_store *s, const char *name, const char *ctr_id);
/* The host directory to mount, creating the volume when missing; *fresh is true when its
 * data directory is empty and was never copied into (copy-up wanted). Emits "mount". */
char *vol_mount_path(struct vol_store *s, const char *name, const char *ctr_id, bool *fresh,
                     struct merr *err) MUST_CHECK;
/* Records that the copy-up happened (an emptied volume is not filled again). */
void vol_mark_populated(struct vol_store *s, const char *name);
bool vol_is_anonymous(struct vol_store *s, const char *name);

/* ---- copy-up (copyup.c) ---- */

/* Copies the image's content at target (an absolute path inside the image) into dst_dir: the
 * layers are applied bottom-up (layers[] top first, whiteouts and opaque directories
 * honoured). Paths are resolved beneath each layer without following symlinks. */
int vol_copy_up(char *const *layers, const char *target, const char *dst_dir,
                struct merr *err) MUST_CHECK;

#endif
