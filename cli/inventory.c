#include "inventory.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"

int inventory_format_parse(const char *s, enum inventory_format *out, struct merr *err)
{
    static const struct {
        const char *name;
        enum inventory_format fmt;
    } names[] = { { "ansible", INVENTORY_ANSIBLE },
                  { "json", INVENTORY_JSON },
                  { "ssh-config", INVENTORY_SSH_CONFIG } };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].fmt;
            return 0;
        }
    return merr_set(err, MERR_INVALID, 0, "unknown inventory format '%s' (ansible, json or ssh-config)",
                    s);
}

static char *label_value(char *const *labels, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; labels != NULL && labels[i] != NULL; i++)
        if (strncmp(labels[i], key, kl) == 0 && labels[i][kl] == '=' && labels[i][kl + 1] != '\0')
            return labels[i] + kl + 1;
    return NULL;
}

static char *group_name(const char *s)
{
    char *g = xasprintf("%s%s", isdigit((unsigned char)s[0]) ? "g_" : "", s);
    for (char *p = g; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            *p = '_';
    return g;
}

char **inventory_groups(const struct inventory_host *h)
{
    char **groups = NULL;
    const char *keys[] = { "lab", "lab-group" };
    for (size_t i = 0; i < 2; i++) {
        const char *v = label_value(h->labels, keys[i]);
        if (v == NULL)
            continue;
        auto_free char *g = group_name(v);
        bool dup = false;
        for (size_t j = 0; groups != NULL && groups[j] != NULL; j++)
            dup = dup || strcmp(groups[j], g) == 0;
        if (!dup)
            groups = strv_push(groups, g);
    }
    return groups;
}

/* A string as a JSON string, which is also a YAML double-quoted scalar. */
static void put_quoted(FILE *out, const char *s)
{
    json_t *j = json_string(s != NULL ? s : "");
    char *q = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(q != NULL ? q : "\"\"", out);
    free(q);
    json_decref(j);
}

/* -o options for ssh pinning the machine's known host key; single-quoted for Ansible's shlex. */
static char *ssh_common_args(const struct inventory_host *h)
{
    if (strchr(h->known_hosts, '\'') != NULL)
        return xasprintf("-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s", h->known_hosts);
    return xasprintf("-o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=%s'", h->known_hosts);
}

/* The python3 of hosts whose image we make (machine-host of -d container). Ansible would find it
 * too, but on an OS it does not know it warns that the discovered path may change meaning; other
 * hosts are left to its discovery. */
static const char *known_python(const char *driver)
{
    return driver != NULL && strcmp(driver, "container") == 0 ? "/usr/bin/python3" : NULL;
}

static void render_ansible(FILE *out, const struct inventory_host *hosts, size_t n)
{
    fputs("# machine inventory --format ansible\nall:\n  hosts:", out);
    fputs(n == 0 ? " {}\n" : "\n", out);
    for (size_t i = 0; i < n; i++) {
        const struct inventory_host *h = &hosts[i];
        auto_free char *common = ssh_common_args(h);
        fputs("    ", out);
        put_quoted(out, h->name);
        fputs(":\n      ansible_host: ", out);
        put_quoted(out, h->host);
        fprintf(out, "\n      ansible_port: %d\n      ansible_user: ", h->port);
        put_quoted(out, h->user);
        fputs("\n      ansible_ssh_private_key_file: ", out);
        put_quoted(out, h->key_path);
        fputs("\n      ansible_ssh_common_args: ", out);
        put_quoted(out, common);
        if (known_python(h->driver) != NULL) {
            fputs("\n      ansible_python_interpreter: ", out);
            put_quoted(out, known_python(h->driver));
        }
        fputs("\n      machine_driver: ", out);
        put_quoted(out, h->driver);
        fputc('\n', out);
    }
    /* groups, in the order they first appear */
    auto_strv char **seen = NULL;
    for (size_t i = 0; i < n; i++) {
        auto_strv char **gs = inventory_groups(&hosts[i]);
        for (size_t g = 0; gs != NULL && gs[g] != NULL; g++) {
            bool dup = false;
            for (size_t s = 0; seen != NULL && seen[s] != NULL; s++)
                dup = dup || strcmp(seen[s], gs[g]) == 0;
            if (!dup)
                seen = strv_push(seen, gs[g]);
        }
    }
    if (seen == NULL)
        return;
    fputs("  children:\n", out);
    for (size_t s = 0; seen[s] != NULL; s++) {
        fprintf(out, "    %s:\n      hosts:\n", seen[s]);
        for (size_t i = 0; i < n; i++) {
            auto_strv char **gs = inventory_groups(&hosts[i]);
            bool member = false;
            for (size_t g = 0; gs != NULL && gs[g] != NULL; g++)
                member = member || strcmp(gs[g], seen[s]) == 0;
            if (!member)
                continue;
            fputs("        ", out);
            put_quoted(out, hosts[i].name);
            fputs(": {}\n", out);
        }
    }
}

static void render_json(FILE *out, const struct inventory_host *hosts, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct inventory_host *h = &hosts[i];
        json_t *labels = json_object();
        for (size_t l = 0; h->labels != NULL && h->labels[l] != NULL; l++) {
            const char *eq = strchr(h->labels[l], '=');
            auto_free char *k = eq != NULL ? xasprintf("%.*s", (int)(eq - h->labels[l]), h->labels[l])
                                           : xstrdup(h->labels[l]);
            json_object_set_new(labels, k, json_string(eq != NULL ? eq + 1 : ""));
        }
        json_t *groups = json_array();
        auto_strv char **gs = inventory_groups(h);
        for (size_t g = 0; gs != NULL && gs[g] != NULL; g++)
            json_array_append_new(groups, json_string(gs[g]));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:o,s:o}", "Name", h->name,
                                             "Driver", h->driver, "Host", h->host, "Port", h->port,
                                             "User", h->user, "SSHKeyPath", h->key_path, "KnownHosts",
                                             h->known_hosts, "Labels", labels, "Groups", groups));
    }
    char *s = json_dumps(arr, JSON_INDENT(2));
    if (s != NULL)
        fprintf(out, "%s\n", s);
    free(s);
    json_decref(arr);
}

/* ssh_config(5) values: quoted when they hold blanks (OpenSSH accepts double quotes). */
static void put_ssh_value(FILE *out, const char *key, const char *v)
{
    bool quote = strpbrk(v, " \t\"") != NULL;
    fprintf(out, "  %s %s%s%s\n", key, quote ? "\"" : "", v, quote ? "\"" : "");
}

static void render_ssh_config(FILE *out, const struct inventory_host *hosts, size_t n)
{
    fputs("# machine inventory --format ssh-config: Include this file from ~/.ssh/config\n", out);
    for (size_t i = 0; i < n; i++) {
        const struct inventory_host *h = &hosts[i];
        fprintf(out, "\nHost %s\n", h->name);
        put_ssh_value(out, "HostName", h->host);
        fprintf(out, "  Port %d\n", h->port);
        put_ssh_value(out, "User", h->user);
        put_ssh_value(out, "IdentityFile", h->key_path);
        fputs("  IdentitiesOnly yes\n", out);
        put_ssh_value(out, "UserKnownHostsFile", h->known_hosts);
        fputs("  StrictHostKeyChecking yes\n", out);
    }
}

void inventory_render(FILE *out, enum inventory_format fmt, const struct inventory_host *hosts,
                      size_t n)
{
    switch (fmt) {
    case INVENTORY_ANSIBLE: render_ansible(out, hosts, n); break;
    case INVENTORY_JSON: render_json(out, hosts, n); break;
    case INVENTORY_SSH_CONFIG: render_ssh_config(out, hosts, n); break;
    }
}
