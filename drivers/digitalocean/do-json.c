/* DigitalOcean API v2 bodies, built and read without I/O (do-priv.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "do-priv.h"
#include "error.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "machine.h"

void do_droplet_clear(struct do_droplet *d)
{
    free(d->name);
    free(d->status);
    free(d->public_ipv4);
    *d = (struct do_droplet){ 0 };
}

void do_action_clear(struct do_action *a)
{
    free(a->status);
    *a = (struct do_action){ 0 };
}

/* DigitalOcean's rule: letters, digits, colons, dashes and underscores, at most 255. */
static bool valid_tag(const char *t, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!isalnum(c) && c != ':' && c != '-' && c != '_')
            return false;
    }
    return true;
}

static int append_tags(json_t *arr, const char *tags, struct merr *err)
{
    for (const char *p = tags; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        if (len > 0) {
            if (!valid_tag(p, len))
                return merr_set(err, MERR_INVALID, 0,
                                "invalid --digitalocean-tags '%.*s': letters, digits, ':', '-' "
                                "and '_' only, at most 255", (int)len, p);
            json_array_append_new(arr, json_stringn(p, len));
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

json_t *do_droplet_request(const struct do_droplet_spec *s, struct merr *err)
{
    auto_json json_t *tags = json_array();
    if (append_tags(tags, s->tags, err) < 0)
        return NULL;
    if (s->owner_tag != NULL)
        json_array_append_new(tags, json_string(s->owner_tag));
    /* ssh_keys takes ids (numbers) or fingerprints (strings) */
    json_t *key = NULL;
    if (s->ssh_key != NULL && s->ssh_key[0] != '\0') {
        bool digits = strspn(s->ssh_key, "0123456789") == strlen(s->ssh_key);
        key = digits ? json_integer(strtoll(s->ssh_key, NULL, 10)) : json_string(s->ssh_key);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:O}", "name", s->name,
                             "region", s->region, "size", s->size, "image", s->image, "ipv6",
                             s->ipv6, "private_networking", s->private_networking, "backups",
                             s->backups, "monitoring", s->monitoring, "tags", tags);
    if (body == NULL) {
        json_decref(key);
        merr_set(err, MERR_INVALID, 0, "a droplet needs a name, region, size and image");
        return NULL;
    }
    json_object_set_new(body, "ssh_keys", key != NULL ? json_pack("[o]", key) : json_array());
    if (s->user_data != NULL)
        json_object_set_new(body, "user_data", json_string(s->user_data));
    return body;
}

json_t *do_key_request(const char *name, const char *public_key)
{
    size_t len = strlen(public_key);
    while (len > 0 && (public_key[len - 1] == '\n' || public_key[len - 1] == '\r'))
        len--;
    return json_pack("{s:s, s:s%}", "name", name, "public_key", public_key, len);
}

static json_t *load_object(const char *body, size_t len, const char *member, json_t **root,
                           struct merr *err)
{
    json_error_t jerr;
    *root = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, &jerr);
    if (*root == NULL) {
        merr_set(err, MERR_PROTOCOL, 0, "digitalocean: cannot parse the answer: %s", jerr.text);
        return NULL;
    }
    json_t *o = json_object_get(*root, member);
    if (!json_is_object(o) && !json_is_array(o)) {
        merr_set(err, MERR_PROTOCOL, 0, "digitalocean: the answer has no '%s'", member);
        return NULL;
    }
    return o;
}

static char *dup_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? xstrdup(s) : NULL;
}

static int droplet_from(json_t *o, struct do_droplet *out, struct merr *err)
{
    json_t *id = json_object_get(o, "id");
    if (!json_is_integer(id))
        return merr_set(err, MERR_PROTOCOL, 0, "digitalocean: a droplet without an id");
    out->id = json_integer_value(id);
    out->name = dup_str(o, "name");
    out->status = dup_str(o, "status");
    size_t i;
    json_t *net;
    json_array_foreach(json_object_get(json_object_get(o, "networks"), "v4"), i, net) {
        const char *type = json_string_value(json_object_get(net, "type"));
        const char *ip = json_string_value(json_object_get(net, "ip_address"));
        if (type != NULL && strcmp(type, "public") == 0 && ip != NULL && ip[0] != '\0') {
            out->public_ipv4 = xstrdup(ip);
            break;
        }
    }
    return 0;
}

int do_parse_droplet(const char *body, size_t len, struct do_droplet *out, struct merr *err)
{
    *out = (struct do_droplet){ 0 };
    auto_json json_t *root = NULL;
    json_t *o = load_object(body, len, "droplet", &root, err);
    if (o == NULL)
        return -1;
    if (droplet_from(o, out, err) < 0) {
        do_droplet_clear(out);
        return -1;
    }
    return 0;
}

static char *next_link(json_t *root)
{
    return dup_str(json_object_get(json_object_get(root, "links"), "pages"), "next");
}

int do_parse_droplet_page(const char *body, size_t len, do_droplet_fn fn, void *opaque,
                          char **next, struct merr *err)
{
    *next = NULL;
    auto_json json_t *root = NULL;
    json_t *arr = load_object(body, len, "droplets", &root, err);
    if (arr == NULL)
        return -1;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        struct do_droplet d = { 0 };
        int rc = droplet_from(o, &d, err);
        if (rc == 0)
            rc = fn(opaque, &d, err);
        do_droplet_clear(&d);
        if (rc < 0)
            return -1;
    }
    *next = next_link(root);
    return 0;
}

int do_parse_key(const char *body, size_t len, long long *id, char **fingerprint,
                 struct merr *err)
{
    auto_json json_t *root = NULL;
    json_t *o = load_object(body, len, "ssh_key", &root, err);
    if (o == NULL)
        return -1;
    if (!json_is_integer(json_object_get(o, "id")))
        return merr_set(err, MERR_PROTOCOL, 0, "digitalocean: an SSH key without an id");
    *id = json_integer_value(json_object_get(o, "id"));
    if (fingerprint != NULL)
        *fingerprint = dup_str(o, "fingerprint");
    return 0;
}

int do_parse_key_page(const char *body, size_t len, const char *name, long long *id, char **next,
                      struct merr *err)
{
    *next = NULL;
    *id = 0;
    auto_json json_t *root = NULL;
    json_t *arr = load_object(body, len, "ssh_keys", &root, err);
    if (arr == NULL)
        return -1;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n != NULL && strcmp(n, name) == 0 && json_is_integer(json_object_get(o, "id"))) {
            *id = json_integer_value(json_object_get(o, "id"));
            return 0;
        }
    }
    *next = next_link(root);
    return 0;
}

int do_parse_action(const char *body, size_t len, struct do_action *out, struct merr *err)
{
    *out = (struct do_action){ 0 };
    auto_json json_t *root = NULL;
    json_t *o = load_object(body, len, "action", &root, err);
    if (o == NULL)
        return -1;
    if (!json_is_integer(json_object_get(o, "id")))
        return merr_set(err, MERR_PROTOCOL, 0, "digitalocean: an action without an id");
    out->id = json_integer_value(json_object_get(o, "id"));
    out->status = dup_str(o, "status");
    return 0;
}

void do_parse_error(const char *body, size_t len, char **id, char **message)
{
    *id = NULL;
    *message = NULL;
    if (body == NULL)
        return;
    auto_json json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root))
        return;
    *id = dup_str(root, "id");
    *message = dup_str(root, "message");
}

int do_status_state(const char *status)
{
    if (status == NULL)
        return MSTATE_ERROR;
    if (strcmp(status, "active") == 0)
        return MSTATE_RUNNING;
    if (strcmp(status, "new") == 0)
        return MSTATE_STARTING;
    if (strcmp(status, "off") == 0 || strcmp(status, "archive") == 0)
        return MSTATE_STOPPED;
    return MSTATE_ERROR;
}
