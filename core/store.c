#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "machine.h"
#include "secrets.h"

#define CONFIG_FILE "config.json"
#define CONFIG_MAX (4u << 20)

char *store_default_root(void)
{
    const char *env = getenv("MACHINE_STORAGE_PATH");
    if (env != NULL && env[0] != '\0')
        return xstrdup(env);
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : "/";
    }
    return path_join(home, ".machine");
}

void store_release(struct store *s)
{
    if (s == NULL)
        return;
    free(s->root);
    free(s->certs_dir);
    free(s->machines_dir);
    s->root = s->certs_dir = s->machines_dir = NULL;
}

int store_open(const char *root, struct store *out, struct merr *err)
{
    out->root = xstrdup(root);
    out->certs_dir = path_join(root, "certs");
    out->machines_dir = path_join(root, "machines");
    if (fs_mkdir_p(out->root, 0700, err) < 0 || fs_mkdir_p(out->certs_dir, 0700, err) < 0 ||
        fs_mkdir_p(out->machines_dir, 0700, err) < 0) {
        merr_prefix(err, "cannot open the machine store");
        store_release(out);
        return -1;
    }
    return 0;
}

char *store_machine_dir(const struct store *s, const char *name)
{
    return path_join(s->machines_dir, name);
}

char *store_machine_file(const struct store *s, const char *name, const char *file)
{
    return xasprintf("%s/%s/%s", s->machines_dir, name, file);
}

char *store_credentials_file(const struct store *s, const char *name)
{
    return xasprintf("%s/credentials/%s.json", s->root, name);
}

static char *render_config(const struct machine *m)
{
    json_t *j = machine_to_json(m);
    char *text = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text == NULL)
        abort();
    return text;
}

/* Best-effort removal on an error path that already has its error. */
static void remove_quietly(const char *path)
{
    struct merr ignored;
    if (fs_remove_tree(path, &ignored) < 0)
        return;
}

int store_create_machine(const struct store *s, const struct machine *m, struct merr *err)
{
    if (machine_validate_name(m->name, err) < 0)
        return -1;
    auto_free char *final = store_machine_dir(s, m->name);
    if (fs_exists(final))
        return merr_set(err, MERR_EXISTS, 0, "machine '%s' already exists", m->name);

    /* Build the directory under a private name, then move it into place with
     * RENAME_NOREPLACE: of two concurrent creates exactly one wins. */
    auto_free char *tmpl = xasprintf("%s/.new-%s-XXXXXX", s->machines_dir, m->name);
    if (mkdtemp(tmpl) == NULL)
        return merr_set(err, MERR_IO, errno, "cannot create a directory in '%s'", s->machines_dir);
    auto_free char *text = render_config(m);
    auto_free char *cfg = path_join(tmpl, CONFIG_FILE);
    if (fs_write_atomic(cfg, text, strlen(text), 0600, err) < 0) {
        remove_quietly(tmpl);
        return -1;
    }
    if (renameat2(AT_FDCWD, tmpl, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
        int e = errno;
        remove_quietly(tmpl);
        if (e == EEXIST || e == ENOTEMPTY)
            return merr_set(err, MERR_EXISTS, 0, "machine '%s' already exists", m->name);
        return merr_set(err, MERR_IO, e, "cannot create machine directory '%s'", final);
    }
    auto_close int dfd = open(s->machines_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        fsync(dfd);
    /* The name is ours now: its credentials (or the removal of a stale file of that name). */
    auto_free char *cred = store_credentials_file(s, m->name);
    if (secrets_save(cred, m, err) < 0) {
        struct merr ignored = MERR_INIT;
        if (store_remove_machine(s, m->name, &ignored) < 0)
            merr_prefix(err, "(machine '%s' left behind)", m->name);
        return -1;
    }
    return 0;
}

int store_save_machine(const struct store *s, const struct machine *m, struct merr *err)
{
    auto_free char *dir = store_machine_dir(s, m->name);
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return merr_set(err, MERR_NOT_FOUND, 0, "Docker machine \"%s\" does not exist", m->name);
    auto_free char *text = render_config(m);
    auto_free char *cfg = path_join(dir, CONFIG_FILE);
    auto_free char *cred = store_credentials_file(s, m->name);
    if (secrets_save(cred, m, err) < 0)
        return -1;
    return fs_write_atomic(cfg, text, strlen(text), 0600, err);
}

struct machine *store_load_machine(const struct store *s, const char *name, struct merr *err)
{
    if (machine_validate_name(name, err) < 0)
        return NULL;
    auto_free char *dir = store_machine_dir(s, name);
    if (!fs_exists(dir)) {
        merr_set(err, MERR_NOT_FOUND, 0, "Docker machine \"%s\" does not exist", name);
        return NULL;
    }
    auto_free char *cfg = path_join(dir, CONFIG_FILE);
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_file(cfg, CONFIG_MAX, &text, &len, err) < 0) {
        if (err->code == MERR_NOT_FOUND)
            err->code = MERR_CORRUPT;
        merr_prefix(err, "machine '%s' has no readable config", name);
        return NULL;
    }
    struct machine *m = machine_from_text(text, len, err);
    if (m == NULL) {
        merr_prefix(err, "corrupt config for machine '%s' (%s)", name, cfg);
        return NULL;
    }
    if (strcmp(m->name, name) != 0) {
        merr_set(err, MERR_CORRUPT, 0, "config in '%s' names machine '%s'", cfg, m->name);
        machine_free(m);
        return NULL;
    }
    auto_free char *cred = store_credentials_file(s, name);
    if (secrets_load(cred, m, err) < 0) {
        merr_prefix(err, "machine '%s' has unreadable credentials", name);
        machine_free(m);
        return NULL;
    }
    return m;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **store_list_names(const struct store *s, struct merr *err)
{
    auto_closedir DIR *d = opendir(s->machines_dir);
    if (d == NULL) {
        merr_set(err, MERR_IO, errno, "cannot read '%s'", s->machines_dir);
        return NULL;
    }
    char **names = xcalloc(1, sizeof *names);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        struct merr ignored;
        if (machine_validate_name(de->d_name, &ignored) < 0)
            continue;
        names = strv_push(names, de->d_name);
    }
    qsort(names, strv_len(names), sizeof *names, cmp_str);
    return names;
}

int store_remove_machine(const struct store *s, const char *name, struct merr *err)
{
    if (machine_validate_name(name, err) < 0)
        return -1;
    auto_free char *dir = store_machine_dir(s, name);
    /* Move aside first so a half-removed machine never looks like a machine. */
    auto_free char *trash = xasprintf("%s/.rm-%s-%d", s->machines_dir, name, (int)getpid());
    if (rename(dir, trash) < 0) {
        if (errno == ENOENT)
            return merr_set(err, MERR_NOT_FOUND, 0, "Docker machine \"%s\" does not exist", name);
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", dir);
    }
    if (fs_remove_tree(trash, err) < 0)
        return -1;
    /* The machine's lock file goes too (rm holds it): nothing of the machine stays behind. A
     * process that waited on it finds the machine gone when it loads it. */
    auto_free char *lock = xasprintf("%s/.lock-%s", s->machines_dir, name);
    if (unlink(lock) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", lock);
    auto_free char *cred = store_credentials_file(s, name);
    if (unlink(cred) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", cred);
    return 0;
}

int store_lock_machine(const struct store *s, const char *name, int timeout_ms, struct merr *err)
{
    auto_free char *path = xasprintf("%s/.lock-%s", s->machines_dir, name);
    return fs_lock(path, timeout_ms, err);
}
