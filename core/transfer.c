#include "transfer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context.h"
#include "error.h"
#include "fsutil.h"
#include "machine.h"
#include "store.h"
#include "tarw.h"

#define FILE_MAX (4u << 20)    /* one file of a machine directory */
#define ENTRIES_MAX 64u        /* a machine directory holds a dozen files */
#define TOTAL_MAX (16u << 20)

/* ---- pure parts ---- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool transfer_exported_file(const char *name)
{
    static const char *const names[] = { "config.json", "id_ssh", "id_ssh.pub", "known_hosts" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    /* certificates: ca.pem, cert.pem, key.pem, server.pem, server-key.pem */
    if (!has_suffix(name, ".pem") || strlen(name) > 64)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-' && *p != '.')
            return false;
    return name[0] != '.';
}

static const char *type_name(char type)
{
    switch (type) {
    case '1': return "a hard link";
    case '2': return "a symbolic link";
    case '3': return "a character device";
    case '4': return "a block device";
    case '5': return "a directory";
    case '6': return "a FIFO";
    default: return "not a regular file";
    }
}

int transfer_check_entry(const char *name, char type, const char **base, struct merr *err)
{
    *base = NULL;
    if (name == NULL || name[0] == '\0')
        return merr_set(err, MERR_INVALID, 0, "archive entry without a name");
    if (name[0] == '/')
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s': absolute path", name);
    const char *rest = name;
    while (strncmp(rest, "./", 2) == 0)
        rest += 2;
    if (type == '5' && (rest[0] == '\0' || strcmp(rest, ".") == 0))
        return 0;
    if (strcmp(rest, "..") == 0 || strncmp(rest, "../", 3) == 0 || strstr(rest, "/../") != NULL ||
        has_suffix(rest, "/.."))
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s': path outside the machine directory",
                        name);
    if (type != '0' && type != '\0')
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s': %s", name, type_name(type));
    if (strchr(rest, '/') != NULL)
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s': not a file of the machine directory",
                        name);
    if (strcmp(rest, "credentials.json") == 0)
        return merr_set(err, MERR_INVALID, 0,
                        "archive entry '%s': credentials are never imported (give them through the "
                        "driver's environment variables)", name);
    if (strcmp(rest, TRANSFER_MANIFEST) != 0 && !transfer_exported_file(rest))
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s': not a file of a machine export",
                        name);
    *base = rest;
    return 0;
}

static char *moved_path(const char *value, const char *old_dir, const char *new_dir)
{
    size_t n = strlen(old_dir);
    if (n == 0 || strncmp(value, old_dir, n) != 0 || value[n] != '/')
        return NULL;
    return xasprintf("%s%s", new_dir, value + n);
}

void transfer_rewrite_config(json_t *config, const char *old_dir, const char *new_dir,
                             const char *new_name)
{
    json_object_set_new(config, "Name", json_string(new_name));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(config, "Driver"), k, v) {
        if (!json_is_string(v))
            continue;
        auto_free char *moved = moved_path(json_string_value(v), old_dir, new_dir);
        if (moved != NULL)
            json_string_set(v, moved);
    }
}

/* ---- export ---- */

static int export_file(struct tarw *w, const char *dir, const char *name, struct merr *err)
{
    auto_free char *path = path_join(dir, name);
    auto_free char *data = NULL;
    size_t len = 0;
    if (fs_read_regular(path, FILE_MAX, &data, &len, err) < 0)
        return merr_prefix(err, "cannot export '%s'", name);
    struct tarw_meta meta = { .name = name, .type = '0', .mode = strcmp(name, "id_ssh") == 0 ||
                                                                 strcmp(name, "key.pem") == 0 ||
                                                                 has_suffix(name, "-key.pem")
                                                             ? 0600
                                                             : 0644,
                              .size = len };
    if (tarw_entry(w, &meta, err) < 0 || tarw_data(w, data, len, err) < 0)
        return -1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **exported_names(const char *dir, struct merr *err)
{
    auto_closedir DIR *d = opendir(dir);
    if (d == NULL)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", dir), NULL;
    char **names = xcalloc(1, sizeof *names);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (transfer_exported_file(de->d_name))
            names = strv_push(names, de->d_name);
    qsort(names, strv_len(names), sizeof *names, cmp_str);
    return names;
}

int machine_export(const struct machine_ctx *ctx, const char *name, transfer_write_fn write,
                   void *opaque, struct merr *err)
{
    auto_machine struct machine *m = store_load_machine(&ctx->store, name, err);
    if (m == NULL)
        return -1;
    auto_free char *dir = store_machine_dir(&ctx->store, name);
    auto_strv char **names = exported_names(dir, err);
    if (names == NULL)
        return -1;
    struct tarw w = { .write = write, .ctx = opaque };
    int rc = 0;
    for (size_t i = 0; rc == 0 && names[i] != NULL; i++)
        rc = export_file(&w, dir, names[i], err);
    if (rc == 0) {
        json_t *man = json_pack("{s:i,s:s,s:s}", "Version", 1, "Name", name, "Dir", dir);
        auto_free char *text = json_dumps(man, JSON_INDENT(4) | JSON_SORT_KEYS);
        json_decref(man);
        struct tarw_meta meta = { .name = TRANSFER_MANIFEST, .type = '0', .mode = 0644,
                                  .size = strlen(text) };
        rc = tarw_entry(&w, &meta, err) < 0 || tarw_data(&w, text, strlen(text), err) < 0 ||
                     tarw_close(&w, err) < 0
                 ? -1
                 : 0;
    }
    tarw_release(&w);
    return rc;
}

/* ---- import ---- */

static void archive_freep(struct archive **a)
{
    if (*a != NULL)
        archive_read_free(*a);
}

static void remove_dirp(char **dir)
{
    struct merr ignored = MERR_INIT;
    if (*dir != NULL && fs_remove_tree(*dir, &ignored) < 0)
        (void)0; /* best effort: the import already has its error */
    free(*dir);
}

static char entry_type(struct archive_entry *e)
{
    if (archive_entry_hardlink(e) != NULL)
        return '1';
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: return '0';
    case AE_IFDIR: return '5';
    case AE_IFLNK: return '2';
    case AE_IFCHR: return '3';
    case AE_IFBLK: return '4';
    case AE_IFIFO: return '6';
    default: return '?';
    }
}

static mode_t file_mode(const char *name)
{
    return strcmp(name, "id_ssh") == 0 || has_suffix(name, "key.pem") ||
                   strcmp(name, "config.json") == 0
               ? 0600
               : 0644;
}

static int unpack_entry(struct archive *a, int dfd, const char *name, int64_t size,
                        size_t *total, struct merr *err)
{
    if (size < 0 || (uint64_t)size > FILE_MAX || *total + (size_t)size > TOTAL_MAX)
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s' is too large", name);
    *total += (size_t)size;
    auto_close int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                               file_mode(name));
    if (fd < 0 && errno == EEXIST)
        return merr_set(err, MERR_INVALID, 0, "archive entry '%s' appears twice", name);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", name);
    char buf[16384];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n < 0)
            return merr_set(err, MERR_CORRUPT, 0, "cannot read '%s' from the archive: %s", name,
                            archive_error_string(a));
        if (n == 0)
            break;
        if (fs_write_all(fd, buf, (size_t)n) < 0)
            return merr_set(err, MERR_IO, errno, "cannot write '%s'", name);
    }
    if (fsync(fd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", name);
    return 0;
}

static int unpack(int fd, const char *dir, struct merr *err)
{
    __attribute__((cleanup(archive_freep))) struct archive *a = archive_read_new();
    if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_filter_none(a) != ARCHIVE_OK)
        return merr_set(err, MERR_NOMEM, 0, "cannot set up the archive reader");
    if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
        return merr_set(err, MERR_CORRUPT, 0, "not a machine export: %s", archive_error_string(a));
    auto_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", dir);
    size_t total = 0;
    struct archive_entry *e;
    for (unsigned n = 0;; n++) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return merr_set(err, MERR_CORRUPT, 0, "not a machine export: %s",
                            archive_error_string(a));
        if (n >= ENTRIES_MAX)
            return merr_set(err, MERR_INVALID, 0, "the archive has more than %u entries",
                            ENTRIES_MAX);
        const char *base;
        if (transfer_check_entry(archive_entry_pathname(e), entry_type(e), &base, err) < 0)
            return -1;
        if (base != NULL &&
            unpack_entry(a, dfd, base, archive_entry_size(e), &total, err) < 0)
            return -1;
    }
    return 0;
}

static json_t *read_json(const char *dir, const char *name, struct merr *err)
{
    auto_free char *path = path_join(dir, name);
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_regular(path, FILE_MAX, &text, &len, err) < 0) {
        if (!fs_exists(path))
            merr_set(err, MERR_CORRUPT, 0, "not a machine export: it has no %s", name);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        merr_set(err, MERR_CORRUPT, 0, "not a machine export: %s is not a JSON object", name);
        return NULL;
    }
    return j;
}

/* config.json of the unpacked dir renamed and with its paths moved to final. */
static char *adopt_config(const char *dir, const char *final, const char *new_name,
                          struct merr *err)
{
    json_t *man = read_json(dir, TRANSFER_MANIFEST, err);
    json_t *cfg = man != NULL ? read_json(dir, "config.json", err) : NULL;
    char *name = NULL;
    const char *old_dir = json_string_value(json_object_get(man, "Dir"));
    if (cfg != NULL && (json_integer_value(json_object_get(man, "Version")) != 1 || old_dir == NULL))
        merr_set(err, MERR_CORRUPT, 0, "not a machine export: %s is not version 1",
                 TRANSFER_MANIFEST);
    else if (cfg != NULL) {
        const char *old_name = json_string_value(json_object_get(cfg, "Name"));
        name = xstrdup(new_name != NULL ? new_name : old_name != NULL ? old_name : "");
        auto_free char *target = path_join(final, name);
        transfer_rewrite_config(cfg, old_dir, target, name);
        auto_machine struct machine *m = machine_from_json(cfg, err);
        auto_free char *text = NULL;
        if (m != NULL) {
            json_t *j = machine_to_json(m);
            text = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
            json_decref(j);
        }
        auto_free char *path = path_join(dir, "config.json");
        if (m == NULL || machine_validate_name(name, err) < 0 ||
            fs_write_atomic(path, text, strlen(text), 0600, err) < 0) {
            free(name);
            name = NULL;
        }
    }
    json_decref(man);
    json_decref(cfg);
    return name;
}

int machine_import(const struct machine_ctx *ctx, int fd, const char *new_name, char **imported,
                   struct merr *err)
{
    if (new_name != NULL && machine_validate_name(new_name, err) < 0)
        return -1;
    if (new_name != NULL) {
        auto_free char *dir = store_machine_dir(&ctx->store, new_name);
        if (fs_exists(dir))
            return merr_set(err, MERR_EXISTS, 0, "machine '%s' already exists", new_name);
    }
    __attribute__((cleanup(remove_dirp))) char *tmp =
        xasprintf("%s/.import-XXXXXX", ctx->store.machines_dir);
    if (mkdtemp(tmp) == NULL) {
        free(tmp);
        tmp = NULL;
        return merr_set(err, MERR_IO, errno, "cannot create a directory in '%s'",
                        ctx->store.machines_dir);
    }
    if (unpack(fd, tmp, err) < 0)
        return merr_prefix(err, "cannot import");
    auto_free char *name = adopt_config(tmp, ctx->store.machines_dir, new_name, err);
    if (name == NULL)
        return merr_prefix(err, "cannot import");
    auto_free char *final = store_machine_dir(&ctx->store, name);
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            return merr_set(err, MERR_EXISTS, 0, "machine '%s' already exists (import it with "
                            "--name NEW)", name);
        return merr_set(err, MERR_IO, errno, "cannot create machine directory '%s'", final);
    }
    free(tmp);
    tmp = NULL; /* it is the machine now */
    if (fs_sync_dir_of(final, err) < 0)
        return -1;
    *imported = steal_pointer(&name);
    return 0;
}
