/* image_login (POST /auth, docker login): the credentials are tried against the registry's
 * /v2/ as a pull would use them (Basic, or a Bearer token from the realm). Nothing is kept. */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "image/auth.h"
#include "image/internal.h"

/* "https://index.docker.io/v1/", "http://127.0.0.1:5000", "127.0.0.1:5000/", "" → domain */
static int server_domain(const char *server, char *out, size_t cap, struct merr *err)
{
    const char *s = server != NULL ? server : "";
    if (strncmp(s, "https://", 8) == 0)
        s += 8;
    else if (strncmp(s, "http://", 7) == 0)
        s += 7;
    size_t n = strcspn(s, "/");
    if (n == 0 || (n == 15 && strncmp(s, "index.docker.io", n) == 0) ||
        (n == 20 && strncmp(s, "registry-1.docker.io", n) == 0)) {
        snprintf(out, cap, "docker.io");
        return 0;
    }
    if (n >= cap || memchr(s, '@', n) != NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid registry address '%.200s'", server);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int image_login(struct image_store *s, const struct registry_config *rc, const char *username,
                const char *password, const char *identitytoken, const char *serveraddress,
                struct merr *err)
{
    struct image_ref ref = { 0 };
    if (server_domain(serveraddress, ref.domain, sizeof ref.domain, err) < 0)
        return -1;
    struct registry_creds creds = {
        .username = (char *)username,
        .password = (char *)password,
        .identitytoken = (char *)identitytoken,
    };
    auto_strv char **endpoints = registry_endpoints(rc, &ref, err);
    if (endpoints == NULL)
        return -1;
    size_t last = 0;
    while (endpoints[last + 1] != NULL)
        last++;
    pthread_mutex_lock(&s->lock);
    int r = curl_api_load(&s->curl, err);
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return -1;
    auto_registry_client struct registry_client *c =
        registry_client_new(rc, &s->curl, endpoints[last], "", &creds, err);
    if (c == NULL)
        return -1;
    if (registry_ping(c, err) == 0)
        return 0;
    if (err->code == MERR_AUTH) /* dockerd's words */
        return merr_set(err, MERR_AUTH, 0, "login attempt to %s/v2/ failed with status: 401 Unauthorized",
                        endpoints[last]);
    return -1;
}
