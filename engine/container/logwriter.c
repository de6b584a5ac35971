/* The json-file log of a container: appends with max-size/max-file rotation (docker's names:
 * <id>-json.log, then .1 the newest rotated file ... .N-1 the oldest), and the files to read in
 * order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "manager-priv.h"

FILE *logw_open(const char *path, int64_t *size)
{
    FILE *f = fopen(path, "ae");
    struct stat st;
    *size = f != NULL && fstat(fileno(f), &st) == 0 ? (int64_t)st.st_size : 0;
    return f;
}

static int rotate(FILE **f, int64_t *size, const char *path, int max_file, struct merr *err)
{
    if (*f != NULL)
        fclose(*f);
    *f = NULL;
    for (int i = max_file - 1; i >= 2; i--) {
        auto_free char *from = ctr_log_rotated_path(path, i - 1);
        auto_free char *to = ctr_log_rotated_path(path, i);
        if (rename(from, to) < 0 && errno != ENOENT)
            return merr_set(err, MERR_IO, errno, "cannot rotate '%s'", from);
    }
    if (max_file >= 2) {
        auto_free char *to = ctr_log_rotated_path(path, 1);
        if (rename(path, to) < 0 && errno != ENOENT)
            return merr_set(err, MERR_IO, errno, "cannot rotate '%s'", path);
    } else if (truncate(path, 0) < 0 && errno != ENOENT) {
        return merr_set(err, MERR_IO, errno, "cannot truncate '%s'", path);
    }
    *f = logw_open(path, size);
    if (*f == NULL)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
    return 0;
}

int logw_append(FILE **f, int64_t *size, const char *path, const struct ctr_log_config *cfg,
                const char *line, size_t len, struct merr *err)
{
    if (cfg->max_size > 0 && *size > 0 && *size + (int64_t)len > cfg->max_size &&
        rotate(f, size, path, cfg->max_file, err) < 0)
        return -1;
    if (*f == NULL)
        return 0;
    if (fwrite(line, 1, len, *f) != len)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", path);
    *size += (int64_t)len;
    return 0;
}

char **logw_files(const char *path, int max_file)
{
    char **files = xcalloc(1, sizeof *files);
    for (int i = max_file - 1; i >= 1; i--) {
        auto_free char *p = ctr_log_rotated_path(path, i);
        if (access(p, F_OK) == 0)
            files = strv_push(files, p);
    }
    return strv_push(files, path);
}

