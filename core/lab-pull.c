/* setup.images references: pulled once on this computer from their registry (the Registry HTTP
 * API v2; Basic credentials or bearer tokens, anonymous or asked for with the credentials of
 * `docker login` (dockercreds.h), when the registry asks) into a docker-archive file under
 * <store>/cache/images, which lab-images.c then loads onto each host. Loopback registries are
 * spoken to over plain HTTP (dockerd's default for 127.0.0.0/8), every other one over HTTPS. */
#include "lab-pull.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "curl_linked.h"
#include "curlapi.h"
#include "dockercreds.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "tarw.h"

#define MANIFEST_MAX (4u << 20)
#define PULL_DEADLINE_MS (30L * 60 * 1000)
#define LOCK_WAIT_MS (30 * 60 * 1000)

/* ---- pure parts ---- */

void lab_image_ref_clear(struct lab_image_ref *r)
{
    free(r->registry);
    free(r->repo);
    free(r->tag);
    free(r->digest);
    free(r->familiar);
    memset(r, 0, sizeof *r);
}

static bool valid_repo(const char *s)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._-/", *p) != NULL))
            return false;
    return s[0] != '/' && s[strlen(s) - 1] != '/' && strstr(s, "//") == NULL;
}

int lab_image_ref_parse(const char *s, struct lab_image_ref *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    auto_free char *name = xstrdup(s);
    char *at = strchr(name, '@');
    if (at != NULL) {
        *at = '\0';
        if (strncmp(at + 1, "sha256:", 7) != 0 || strlen(at + 8) != 64)
            return merr_set(err, MERR_INVALID, 0, "invalid image reference '%s'", s);
        out->digest = xstrdup(at + 1);
    }
    char *slash = strchr(name, '/');
    const char *path = name;
    if (slash != NULL && (memchr(name, '.', (size_t)(slash - name)) != NULL ||
                          memchr(name, ':', (size_t)(slash - name)) != NULL ||
                          strncmp(name, "localhost/", 10) == 0)) {
        *slash = '\0';
        out->registry = xstrdup(name);
        path = slash + 1;
    }
    char *colon = strrchr(path, ':');
    if (colon != NULL) {
        *colon = '\0';
        out->tag = xstrdup(colon + 1);
    }
    if (!valid_repo(path) || (out->tag != NULL && out->tag[0] == '\0')) {
        lab_image_ref_clear(out);
        return merr_set(err, MERR_INVALID, 0, "invalid image reference '%s'", s);
    }
    if (out->tag == NULL && out->digest == NULL)
        out->tag = xstrdup("latest");
    bool hub = out->registry == NULL || strcmp(out->registry, "docker.io") == 0;
    out->repo = hub && strchr(path, '/') == NULL ? xasprintf("library/%s", path) : xstrdup(path);
    const char *shown = hub && strncmp(out->repo, "library/", 8) == 0 ? out->repo + 8 : out->repo;
    out->familiar = hub ? xasprintf("%s:%s", shown, out->tag != NULL ? out->tag : "latest")
                        : xasprintf("%s/%s:%s", out->registry, shown,
                                    out->tag != NULL ? out->tag : "latest");
    if (hub) {
        free(out->registry);
        out->registry = xstrdup("registry-1.docker.io");
    }
    return 0;
}

char *lab_bearer_param(const char *header, const char *key)
{
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    size_t k = strlen(key);
    for (const char *p = header + 7; *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq[1] != '"')
            return NULL;
        const char *end = strchr(eq + 2, '"');
        if (end == NULL)
            return NULL;
        if ((size_t)(eq - p) == k && strncasecmp(p, key, k) == 0)
            return strndup(eq + 2, (size_t)(end - eq - 2));
        p = end + 1;
    }
    return NULL;
}

/* ---- the registry ---- */

struct puller {
    struct http_client *hc;
    const struct lab_image_ref *ref;
    char *base;  /* scheme://registry */
    char *auth;  /* "Authorization: ..." once the registry asked for it (a secret) */
    bool creds_read;
    struct dockercreds creds; /* docker login's, read when the registry first asks */
    char *creds_source;       /* where they came from, for messages */
};

static bool loopback(const char *registry)
{
    return strncmp(registry, "127.", 4) == 0 || strncmp(registry, "localhost", 9) == 0 ||
           strncmp(registry, "[::1]", 5) == 0;
}

static void set_auth(struct puller *p, char *line)
{
    if (p->auth != NULL) {
        explicit_bzero(p->auth, strlen(p->auth));
        free(p->auth);
    }
    p->auth = line;
}

/* The user's docker credentials for the registry, read once. */
static int read_creds(struct puller *p, struct merr *err)
{
    if (p->creds_read)
        return 0;
    p->creds_read = true;
    if (dockercreds_lookup(NULL, p->ref->registry, &p->creds, &p->creds_source, err) < 0)
        return merr_prefix(err, "credentials for registry '%s'", p->ref->registry);
    return 0;
}

/* What a registry that still refuses says: which credentials it refused, or how to give some. */
static int refused(struct puller *p, long status, struct merr *err)
{
    if (p->creds.kind == DOCKERCREDS_BASIC)
        return merr_set(err, MERR_AUTH, 0,
                        "registry '%s' refused the credentials of '%s' from '%s' (HTTP %ld)",
                        p->ref->registry, p->creds.username, p->creds_source, status);
    bool hub = strcmp(p->ref->registry, "registry-1.docker.io") == 0; /* `docker login` alone */
    return merr_set(err, MERR_AUTH, 0,
                    "registry '%s' asks for credentials (HTTP %ld): run 'docker login%s%s'",
                    p->ref->registry, status, hub ? "" : " ", hub ? "" : p->ref->registry);
}

/* A token for the challenge, asked for with the user's credentials when there are any (only
 * over https, or plain http on loopback). */
static int fetch_token(struct puller *p, const char *challenge, struct merr *err)
{
    auto_free char *realm = lab_bearer_param(challenge, "realm");
    auto_free char *service = lab_bearer_param(challenge, "service");
    auto_free char *scope = lab_bearer_param(challenge, "scope");
    if (realm == NULL)
        return merr_set(err, MERR_AUTH, 0, "registry '%s' asks for credentials ('%s')",
                        p->ref->registry, challenge);
    if (read_creds(p, err) < 0)
        return -1;
    auto_free char *basic = NULL;
    if (p->creds.kind == DOCKERCREDS_BASIC) {
        bool plain_ok = strncmp(realm, "http://", 7) == 0 && loopback(realm + 7);
        if (strncmp(realm, "https://", 8) != 0 && !plain_ok)
            return merr_set(err, MERR_AUTH, 0, "refusing to send credentials to token realm '%s': not https",
                            realm);
        basic = xasprintf("Authorization: Basic %s", p->creds.basic);
    }
    auto_free char *url = xasprintf("%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?',
                                    service ? service : "", scope ? scope : "");
    const char *headers[2] = { basic, NULL };
    struct http_request rq = { .url = url, .headers = headers, .deadline_ms = 60000 };
    struct http_response resp;
    int rc = http_do(p->hc, &rq, &resp, err);
    if (basic != NULL)
        explicit_bzero(basic, strlen(basic));
    if (rc < 0)
        return -1;
    json_error_t jerr;
    json_t *j = resp.status == 200 ? json_loadb(resp.body ? resp.body : "", resp.len, 0, &jerr) : NULL;
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (tok == NULL)
        tok = json_string_value(json_object_get(j, "access_token"));
    if (tok != NULL)
        set_auth(p, xasprintf("Authorization: Bearer %s", tok));
    json_decref(j);
    long status = resp.status;
    if (resp.body != NULL)
        explicit_bzero(resp.body, resp.len);
    http_response_clear(&resp);
    if (tok == NULL && (status == 401 || status == 403))
        return refused(p, status, err);
    if (tok == NULL)
        return merr_set(err, MERR_AUTH, 0, "no token from '%s' (HTTP %ld)", realm, status);
    return 0;
}

/* Answers a 401's challenge: Basic with the user's credentials, or a Bearer token. */
static int answer_challenge(struct puller *p, const char *challenge, struct merr *err)
{
    if (strncasecmp(challenge, "Basic", 5) != 0 || (challenge[5] != ' ' && challenge[5] != '\0'))
        return fetch_token(p, challenge, err);
    if (read_creds(p, err) < 0)
        return -1;
    if (p->creds.kind != DOCKERCREDS_BASIC)
        return refused(p, 401, err);
    set_auth(p, xasprintf("Authorization: Basic %s", p->creds.basic));
    return 0;
}

/* GET path on the registry (answering its challenge once when told to). */
static int reg_get(struct puller *p, const char *path, const char *accept, http_write_fn on_body,
                   void *ctx, struct http_response *resp, struct merr *err)
{
    auto_free char *url = xasprintf("%s/v2/%s", p->base, path);
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *headers[3] = { accept, NULL, NULL };
        headers[accept != NULL ? 1 : 0] = p->auth;
        struct http_request rq = { .url = url, .headers = headers, .max_response = MANIFEST_MAX,
                                   .on_body = on_body, .on_body_ctx = ctx,
                                   .deadline_ms = PULL_DEADLINE_MS };
        if (http_do(p->hc, &rq, resp, err) < 0)
            return -1;
        const char *challenge = http_response_header(resp, "WWW-Authenticate");
        if (resp->status != 401 || attempt > 0 || challenge == NULL)
            break;
        auto_free char *c = xstrdup(challenge);
        http_response_clear(resp);
        if (answer_challenge(p, c, err) < 0)
            return -1;
    }
    if (resp->status == 401) {
        http_response_clear(resp);
        return refused(p, 401, err);
    }
    if (resp->status != 200) {
        long st = resp->status;
        http_response_clear(resp);
        return merr_set(err, st == 404 ? MERR_NOT_FOUND : MERR_REMOTE, 0,
                        "registry '%s' answered GET /v2/%s with HTTP %ld", p->ref->registry, path, st);
    }
    return 0;
}

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: application/vnd.oci.image.index.v1+json, "                                           \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                                 \
    "application/vnd.oci.image.manifest.v1+json, "                                                \
    "application/vnd.docker.distribution.manifest.v2+json"

static const char *host_arch(void)
{
    struct utsname u;
    if (uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0)
        return "arm64";
    return "amd64";
}

/* The image manifest of the reference (through an index for this computer's architecture). */
static json_t *get_manifest(struct puller *p, struct merr *err)
{
    auto_free char *ref = xstrdup(p->ref->digest != NULL ? p->ref->digest : p->ref->tag);
    for (int depth = 0; depth < 2; depth++) {
        auto_free char *path = xasprintf("%s/manifests/%s", p->ref->repo, ref);
        struct http_response resp;
        if (reg_get(p, path, ACCEPT_MANIFESTS, NULL, NULL, &resp, err) < 0)
            return NULL;
        json_error_t jerr;
        json_t *m = json_loadb(resp.body ? resp.body : "", resp.len, 0, &jerr);
        http_response_clear(&resp);
        if (!json_is_object(m)) {
            json_decref(m);
            return merr_set(err, MERR_PROTOCOL, 0, "the manifest of '%s' is not JSON",
                            p->ref->familiar), NULL;
        }
        json_t *list = json_object_get(m, "manifests");
        if (!json_is_array(list))
            return m;
        const char *pick = NULL;
        size_t i;
        json_t *d;
        json_array_foreach(list, i, d) {
            json_t *pl = json_object_get(d, "platform");
            if (pick == NULL &&
                strcmp(json_string_value(json_object_get(pl, "os")) ?: "", "linux") == 0 &&
                strcmp(json_string_value(json_object_get(pl, "architecture")) ?: "", host_arch()) == 0)
                pick = json_string_value(json_object_get(d, "digest"));
        }
        free(ref);
        ref = pick != NULL ? xstrdup(pick) : NULL;
        json_decref(m);
        if (ref == NULL)
            return merr_set(err, MERR_NOT_FOUND, 0, "'%s' has no linux/%s image",
                            p->ref->familiar, host_arch()), NULL;
    }
    return merr_set(err, MERR_PROTOCOL, 0, "'%s': an index inside an index", p->ref->familiar), NULL;
}

struct blob_sink {
    int fd;
    EVP_MD_CTX *md;
};

static int blob_write(void *ctx, const struct http_response *resp, const void *buf, size_t len,
                      struct merr *err)
{
    (void)resp;
    struct blob_sink *s = ctx;
    if (fs_write_all(s->fd, buf, len) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write a layer");
    EVP_DigestUpdate(s->md, buf, len);
    return 0;
}

/* The blob into dir/<hex>, its sha256 checked; a malformed digest is refused before it names a
 * file (security case 8). */
static int get_blob(struct puller *p, const char *dir, const char *digest, struct merr *err)
{
    if (digest == NULL || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71 ||
        strspn(digest + 7, "0123456789abcdef") != 64)
        return merr_set(err, MERR_PROTOCOL, 0, "'%s': a blob with an unusable digest", p->ref->familiar);
    auto_free char *file = path_join(dir, digest + 7);
    auto_close int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", file);
    struct blob_sink s = { .fd = fd, .md = EVP_MD_CTX_new() };
    EVP_DigestInit_ex(s.md, EVP_sha256(), NULL);
    auto_free char *path = xasprintf("%s/blobs/%s", p->ref->repo, digest);
    struct http_response resp;
    int rc = reg_get(p, path, NULL, blob_write, &s, &resp, err);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(s.md, md, &mdlen);
    EVP_MD_CTX_free(s.md);
    if (rc < 0)
        return -1;
    http_response_clear(&resp);
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strcmp(hex, digest + 7) != 0)
        return merr_set(err, MERR_PROTOCOL, 0, "'%s': blob %s arrived with sha256:%s",
                        p->ref->familiar, digest, hex);
    return 0;
}

/* ---- the docker-archive ---- */

static int fd_sink(void *ctx, const void *buf, size_t len, struct merr *err)
{
    if (fs_write_all(*(int *)ctx, buf, len) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write the image archive");
    return 0;
}

static int put_file(struct tarw *w, const char *name, const char *path, struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
    struct tarw_meta m = { .name = name, .type = '0', .mode = 0644, .size = (uint64_t)st.st_size };
    if (tarw_entry(w, &m, err) < 0)
        return -1;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
        if (n == 0)
            return 0;
        if (tarw_data(w, buf, (size_t)n, err) < 0)
            return -1;
    }
}

/* manifest.json, the config and the layers (as the registry sent them: docker load takes
 * compressed layers) into out. */
static int write_archive(const struct lab_image_ref *ref, const json_t *manifest, const char *dir,
                         int out, struct merr *err)
{
    struct tarw w = { .write = fd_sink, .ctx = &out };
    const char *cfg = json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
    auto_free char *cfg_name = xasprintf("%s.json", cfg + 7);
    json_t *layers = json_array();
    json_t *entry = json_pack("{s:s,s:[s],s:o}", "Config", cfg_name, "RepoTags", ref->familiar,
                              "Layers", layers);
    auto_free char *cfg_path = path_join(dir, cfg + 7);
    int rc = put_file(&w, cfg_name, cfg_path, err);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(manifest, "layers"), i, l) {
        const char *d = json_string_value(json_object_get(l, "digest"));
        auto_free char *name = xasprintf("%s.tar", d + 7);
        auto_free char *path = path_join(dir, d + 7);
        json_array_append_new(layers, json_string(name));
        if (rc == 0)
            rc = put_file(&w, name, path, err);
    }
    json_t *all = json_pack("[o]", entry);
    auto_free char *text = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    struct tarw_meta m = { .name = "manifest.json", .type = '0', .mode = 0644, .size = strlen(text) };
    if (rc == 0 && (tarw_entry(&w, &m, err) < 0 || tarw_data(&w, text, strlen(text), err) < 0 ||
                    tarw_close(&w, err) < 0))
        rc = -1;
    tarw_release(&w);
    return rc;
}

static int pull_into(const struct lab_image_ref *ref, const char *dir, const char *tmp_tar,
                     struct merr *err)
{
    struct curl_api curl;
    curl_api_linked(&curl);
    bool plain = loopback(ref->registry);
    struct http_client_opts o = { .curl = &curl, .allow_http = plain, .follow_redirects = true,
                                  .tls12_min = true, .no_proxy = plain };
    struct puller p = { .ref = ref, .base = xasprintf("%s://%s", plain ? "http" : "https",
                                                      ref->registry) };
    int rc = -1;
    p.hc = http_client_new(&o, err);
    json_t *man = p.hc != NULL ? get_manifest(&p, err) : NULL;
    if (man != NULL) {
        rc = get_blob(&p, dir, json_string_value(json_object_get(json_object_get(man, "config"), "digest")), err);
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(man, "layers"), i, l) {
            if (rc == 0)
                rc = get_blob(&p, dir, json_string_value(json_object_get(l, "digest")), err);
        }
        if (rc == 0) {
            auto_close int fd = open(tmp_tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            rc = fd < 0 ? merr_set(err, MERR_IO, errno, "cannot create '%s'", tmp_tar)
                        : write_archive(ref, man, dir, fd, err);
            if (rc == 0 && fsync(fd) < 0)
                rc = merr_set(err, MERR_IO, errno, "cannot write '%s'", tmp_tar);
        }
    }
    json_decref(man);
    http_client_free(p.hc);
    free(p.base);
    set_auth(&p, NULL);
    dockercreds_clear(&p.creds);
    free(p.creds_source);
    return rc;
}

char *lab_pull_image(const char *cache_dir, const char *image, struct merr *err)
{
    struct lab_image_ref ref;
    if (lab_image_ref_parse(image, &ref, err) < 0)
        return NULL;
    if (fs_mkdir_p(cache_dir, 0700, err) < 0) {
        lab_image_ref_clear(&ref);
        return NULL;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(ref.familiar, strlen(ref.familiar), md, &mdlen, EVP_sha256(), NULL);
    char key[17];
    for (unsigned i = 0; i < 8; i++)
        snprintf(key + 2 * i, 3, "%02x", md[i]);
    auto_free char *lock = xasprintf("%s/%s.lock", cache_dir, key);
    char *out = xasprintf("%s/%s.tar", cache_dir, key);
    int lfd = fs_lock(lock, LOCK_WAIT_MS, err); /* one pull per image, the other hosts wait */
    if (lfd < 0 || fs_exists(out)) {
        if (lfd >= 0)
            fs_unlock(lfd);
        lab_image_ref_clear(&ref);
        if (lfd < 0) {
            free(out);
            out = NULL;
        }
        return out;
    }
    auto_free char *dir = xasprintf("%s/.pull-%s-XXXXXX", cache_dir, key);
    auto_free char *tmp_tar = xasprintf("%s.tmp", out);
    struct merr ignored = MERR_INIT;
    if (mkdtemp(dir) == NULL || pull_into(&ref, dir, tmp_tar, err) < 0 || rename(tmp_tar, out) < 0) {
        if (err->code == MERR_OK)
            merr_set(err, MERR_IO, errno, "cannot write the image cache in '%s'", cache_dir);
        merr_prefix(err, "pulling '%s'", image);
        unlink(tmp_tar);
        free(out);
        out = NULL;
    }
    if (fs_remove_tree(dir, &ignored) < 0)
        (void)0; /* best effort: a temporary directory */
    fs_unlock(lfd);
    lab_image_ref_clear(&ref);
    return out;
}
