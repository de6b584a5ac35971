/* ~/.aws/credentials and ~/.aws/config: INI sections of "key = value" lines, '#' and ';'
 * comments, indented lines continuing a nested value (ignored here). */
#include "awsprofile.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"

void aws_profile_clear(struct aws_profile *p)
{
    if (p == NULL)
        return;
    free(p->access_key);
    if (p->secret_key != NULL)
        explicit_bzero(p->secret_key, strlen(p->secret_key));
    free(p->secret_key);
    free(p->session_token);
    free(p->region);
    *p = (struct aws_profile){ 0 };
}

static char *trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return s;
}

/* Does the section header (between the brackets, trimmed) name the profile? */
static bool section_matches(const char *sect, const char *name, bool config_file)
{
    if (!config_file)
        return strcmp(sect, name) == 0;
    if (strncmp(sect, "profile", 7) == 0 && isspace((unsigned char)sect[7])) {
        const char *n = sect + 8;
        while (isspace((unsigned char)*n))
            n++;
        return strcmp(n, name) == 0;
    }
    return strcmp(name, "default") == 0 && strcmp(sect, "default") == 0;
}

static void take(char **slot, const char *value)
{
    if (*slot == NULL && value[0] != '\0')
        *slot = xstrdup(value);
}

static void assign(struct aws_profile *p, const char *key, const char *value)
{
    if (strcasecmp(key, "aws_access_key_id") == 0)
        take(&p->access_key, value);
    else if (strcasecmp(key, "aws_secret_access_key") == 0)
        take(&p->secret_key, value);
    else if (strcasecmp(key, "aws_session_token") == 0)
        take(&p->session_token, value);
    else if (strcasecmp(key, "region") == 0)
        take(&p->region, value);
}

int aws_profile_parse(const char *text, const char *name, bool config_file,
                      struct aws_profile *p, struct merr *err)
{
    auto_free char *copy = xstrdup(text);
    bool in = false, found = false;
    unsigned lineno = 0;
    char *save = NULL;
    for (char *line = copy; line != NULL; line = save) {
        char *nl = strchr(line, '\n');
        save = nl != NULL ? nl + 1 : NULL;
        char *end = nl != NULL ? nl : line + strlen(line);
        lineno++;
        bool indented = line < end && (line[0] == ' ' || line[0] == '\t');
        char *s = trim(line, end);
        if (s[0] == '\0' || s[0] == '#' || s[0] == ';' || indented)
            continue;
        if (s[0] == '[') {
            char *close = strrchr(s, ']');
            if (close == NULL)
                return merr_set(err, MERR_CORRUPT, 0, "line %u: section header without ']'",
                                lineno);
            char *sect = trim(s + 1, close);
            in = section_matches(sect, name, config_file);
            found = found || in;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || eq == NULL)
            continue;
        char *key = trim(s, eq);
        char *value = trim(eq + 1, eq + 1 + strlen(eq + 1));
        assign(p, key, value);
    }
    return found ? 1 : 0;
}

static char *file_path(const char *env, const char *leaf)
{
    const char *named = getenv(env);
    if (named != NULL && named[0] != '\0')
        return xstrdup(named);
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return NULL;
    return xasprintf("%s/.aws/%s", home, leaf);
}

/* 1 found, 0 not found (or no file), -1 error. */
static int parse_file(const char *path, const char *name, bool config_file,
                      struct aws_profile *p, struct merr *err)
{
    if (path == NULL)
        return 0;
    auto_free char *text = NULL;
    size_t len = 0;
    struct merr rerr = MERR_INIT;
    if (fs_read_file(path, 1 << 20, &text, &len, &rerr) < 0)
        return rerr.sys_errno == ENOENT ? 0 : (*err = rerr, -1);
    int r = aws_profile_parse(text, name, config_file, p, err);
    if (r < 0)
        return merr_prefix(err, "%s", path);
    return r;
}

int aws_profile_load(const char *name, struct aws_profile *p, struct merr *err)
{
    auto_free char *cred = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    auto_free char *conf = file_path("AWS_CONFIG_FILE", "config");
    int a = parse_file(cred, name, false, p, err);
    if (a < 0)
        return -1;
    int b = parse_file(conf, name, true, p, err);
    if (b < 0)
        return -1;
    if (a == 0 && b == 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "AWS profile '%s' not found in %s or %s", name,
                        cred != NULL ? cred : "~/.aws/credentials",
                        conf != NULL ? conf : "~/.aws/config");
    if (p->access_key == NULL || p->secret_key == NULL)
        return merr_set(err, MERR_INVALID, 0,
                        "AWS profile '%s' has no aws_access_key_id and aws_secret_access_key",
                        name);
    return 0;
}
