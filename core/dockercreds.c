/* Registry credentials from the docker CLI's config (see dockercreds.h). */
#include "dockercreds.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "error.h"
#include "fsutil.h"

#define CONFIG_MAX (1u << 20)
#define HELPER_OUT_MAX (64u << 10)
#define HELPER_TIMEOUT_MS 30000
#define HUB_SERVER "https://index.docker.io/v1/"

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void dockercreds_clear(struct dockercreds *c)
{
    free_secret(c->basic);
    free(c->username);
    free(c->helper);
    memset(c, 0, sizeof *c);
}

char *dockercreds_server(const char *registry)
{
    if (strcmp(registry, "docker.io") == 0 || strcmp(registry, "registry-1.docker.io") == 0 ||
        strcmp(registry, "index.docker.io") == 0)
        return xstrdup(HUB_SERVER);
    return xstrdup(registry);
}

/* The host[:port] of a config key ("https://host:5000/v2/" -> "host:5000"), as the docker CLI
 * compares them. */
static char *key_host(const char *key)
{
    if (strncmp(key, "http://", 7) == 0)
        key += 7;
    else if (strncmp(key, "https://", 8) == 0)
        key += 8;
    return strndup(key, strcspn(key, "/"));
}

/* base64 "user:password" checked, the user kept for messages. */
static int take_basic(const char *b64, struct dockercreds *out, struct merr *err)
{
    size_t n = strlen(b64);
    auto_free unsigned char *raw = malloc(n / 4 * 3 + 4);
    int len = raw != NULL && n % 4 == 0 && n > 0 ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) : -1;
    if (len > 0) {
        len -= (n >= 1 && b64[n - 1] == '=') + (n >= 2 && b64[n - 2] == '=');
        raw[len] = '\0';
    }
    const char *colon = len > 0 && memchr(raw, '\0', (size_t)len) == NULL ? strchr((char *)raw, ':') : NULL;
    if (colon == NULL || colon == (char *)raw) {
        if (raw != NULL)
            explicit_bzero(raw, n / 4 * 3 + 4);
        return merr_set(err, MERR_CORRUPT, 0, "its \"auth\" is not base64 of user:password");
    }
    out->username = strndup((char *)raw, (size_t)(colon - (char *)raw));
    explicit_bzero(raw, n / 4 * 3 + 4);
    out->basic = xstrdup(b64);
    out->kind = DOCKERCREDS_BASIC;
    return 0;
}

static int pick_auths(json_t *auths, const char *server, struct dockercreds *out, struct merr *err)
{
    json_t *entry = json_object_get(auths, server);
    const char *key = server;
    if (entry == NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(auths, k, v) {
            auto_free char *host = key_host(k);
            if (host != NULL && strcmp(host, server) == 0) {
                entry = v;
                key = k;
                break;
            }
        }
    }
    if (entry == NULL)
        return 0;
    if (!json_is_object(entry))
        return merr_set(err, MERR_CORRUPT, 0, "auths.\"%s\" is not an object", key);
    json_t *auth = json_object_get(entry, "auth");
    if (auth != NULL && !json_is_string(auth))
        return merr_set(err, MERR_CORRUPT, 0, "auths.\"%s\".auth is not a string", key);
    if (auth == NULL || json_string_value(auth)[0] == '\0') {
        if (json_object_get(entry, "identitytoken") != NULL)
            return merr_set(err, MERR_UNSUPPORTED, 0,
                            "auths.\"%s\" holds an identity token, which is not supported by machine",
                            key);
        return 0;
    }
    if (take_basic(json_string_value(auth), out, err) < 0)
        return merr_prefix(err, "auths.\"%s\"", key);
    return 0;
}

int dockercreds_select(const char *json, size_t len, const char *server, struct dockercreds *out,
                       struct merr *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = root == NULL ? merr_set(err, MERR_CORRUPT, 0, "not JSON: %s (line %d)", jerr.text, jerr.line)
                          : merr_set(err, MERR_CORRUPT, 0, "not a JSON object");
        json_decref(root);
        return rc;
    }
    json_t *helpers = json_object_get(root, "credHelpers");
    json_t *store = json_object_get(root, "credsStore");
    json_t *auths = json_object_get(root, "auths");
    json_t *helper = json_object_get(helpers, server);
    if ((helpers != NULL && !json_is_object(helpers)) || (store != NULL && !json_is_string(store)) ||
        (auths != NULL && !json_is_object(auths)) || (helper != NULL && !json_is_string(helper)))
        rc = merr_set(err, MERR_CORRUPT, 0, "credHelpers, credsStore or auths has the wrong type");
    else if (helper == NULL && store != NULL && json_string_value(store)[0] != '\0')
        helper = store;
    if (rc == 0 && helper != NULL) {
        const char *name = json_string_value(helper);
        if (name[0] == '\0' || strpbrk(name, "/ \t\n") != NULL)
            rc = merr_set(err, MERR_CORRUPT, 0, "credential helper name '%s' is not usable", name);
        else {
            out->kind = DOCKERCREDS_HELPER;
            out->helper = xstrdup(name);
        }
    } else if (rc == 0 && auths != NULL) {
        rc = pick_auths(auths, server, out, err);
    }
    json_decref(root);
    if (rc < 0)
        dockercreds_clear(out);
    return rc;
}

int dockercreds_helper_answer(const char *json, size_t len, struct dockercreds *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    const char *user = json_string_value(json_object_get(root, "Username"));
    const char *secret = json_string_value(json_object_get(root, "Secret"));
    int rc = 0;
    if (user == NULL || secret == NULL || user[0] == '\0')
        rc = merr_set(err, MERR_PROTOCOL, 0, "the answer has no Username and Secret");
    else if (strcmp(user, "<token>") == 0)
        rc = merr_set(err, MERR_UNSUPPORTED, 0,
                      "it holds an identity token, which is not supported by machine");
    else {
        auto_free char *pair = xasprintf("%s:%s", user, secret);
        size_t n = strlen(pair);
        out->basic = malloc(4 * ((n + 2) / 3) + 1);
        if (out->basic == NULL)
            abort();
        EVP_EncodeBlock((unsigned char *)out->basic, (const unsigned char *)pair, (int)n);
        explicit_bzero(pair, n);
        out->username = xstrdup(user);
        out->kind = DOCKERCREDS_BASIC;
    }
    if (root != NULL && secret != NULL)
        explicit_bzero((char *)secret, strlen(secret));
    json_decref(root);
    return rc;
}

/* docker-credential-NAME get, the server on stdin. Its "not found" answer is NONE. */
static int run_helper(const struct cmd_runner *runner, const char *server, struct dockercreds *out,
                      struct merr *err)
{
    auto_free char *prog = xasprintf("docker-credential-%s", out->helper);
    free(out->helper); /* out becomes the helper's answer */
    out->helper = NULL;
    char *argv[] = { prog, "get", NULL };
    struct cmd_spec spec = { .argv = argv, .in = server, .in_len = strlen(server),
                             .timeout_ms = HELPER_TIMEOUT_MS, .out_max = HELPER_OUT_MAX,
                             .err_max = 4096 };
    struct cmd_result res = { 0 };
    struct merr run_err = MERR_INIT;
    int rc = cmd_run(runner, &spec, &res, &run_err);
    const char *text = res.out.data != NULL ? res.out.data : "";
    if (rc < 0 && strstr(text, "credentials not found") != NULL) {
        rc = 0; /* the helper knows nothing of this registry */
        out->kind = DOCKERCREDS_NONE;
    } else if (rc < 0) {
        rc = merr_set(err, run_err.code, 0,
                      "credential helper '%s' failed: %s", prog, run_err.msg);
    } else {
        rc = dockercreds_helper_answer(text, strlen(text), out, err);
        if (rc < 0)
            merr_prefix(err, "credential helper '%s'", prog);
    }
    if (res.out.data != NULL)
        explicit_bzero(res.out.data, strlen(res.out.data));
    cmd_result_release(&res);
    return rc;
}

static char *config_path(void)
{
    const char *dir = getenv("DOCKER_CONFIG");
    if (dir != NULL && dir[0] != '\0')
        return path_join(dir, "config.json");
    const char *home = getenv("HOME");
    return home != NULL && home[0] != '\0' ? xasprintf("%s/.docker/config.json", home) : NULL;
}

int dockercreds_lookup(const struct cmd_runner *runner, const char *registry,
                       struct dockercreds *out, char **source, struct merr *err)
{
    memset(out, 0, sizeof *out);
    *source = NULL;
    auto_free char *path = config_path();
    auto_free char *server = dockercreds_server(registry);
    if (path == NULL)
        return 0;
    char *text = NULL;
    size_t len = 0;
    struct merr rerr = MERR_INIT;
    if (fs_read_file(path, CONFIG_MAX, &text, &len, &rerr) < 0) {
        if (rerr.sys_errno == ENOENT)
            return 0;
        return merr_set(err, rerr.code, 0, "%s", rerr.msg);
    }
    int rc = dockercreds_select(text, len, server, out, err);
    explicit_bzero(text, len);
    free(text);
    if (rc < 0)
        return merr_prefix(err, "docker config '%s'", path);
    if (out->kind == DOCKERCREDS_HELPER) {
        *source = xasprintf("docker-credential-%s", out->helper);
        rc = run_helper(runner, server, out, err);
    } else {
        *source = steal_pointer(&path);
    }
    if (rc < 0 || out->kind == DOCKERCREDS_NONE) {
        free(*source);
        *source = NULL;
        dockercreds_clear(out);
    }
    return rc;
}
