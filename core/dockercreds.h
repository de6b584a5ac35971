/* The docker CLI's registry credentials, as `docker login` left them: $DOCKER_CONFIG/config.json
 * (default ~/.docker/config.json) with `auths.<registry>.auth` (base64 "user:password"), or a
 * credential helper named by `credHelpers.<registry>` or `credsStore`, which is run as
 * `docker-credential-NAME get` with the server address on stdin, as the docker CLI runs it.
 * Secrets are wiped when cleared and never appear in an error. */
#ifndef MACHINE_DOCKERCREDS_H
#define MACHINE_DOCKERCREDS_H

#include <stddef.h>

#include "cleanup.h"

struct merr;
struct cmd_runner;

enum dockercreds_kind {
    DOCKERCREDS_NONE,   /* nothing for this registry */
    DOCKERCREDS_BASIC,  /* basic holds base64 "user:password" */
    DOCKERCREDS_HELPER, /* helper names docker-credential-NAME, not run yet */
};

struct dockercreds {
    enum dockercreds_kind kind;
    char *basic;    /* secret */
    char *username; /* for messages */
    char *helper;
};

/* The key docker uses for a registry host: Docker Hub (docker.io, registry-1.docker.io,
 * index.docker.io) is "https://index.docker.io/v1/", any other registry its host[:port]. */
char *dockercreds_server(const char *registry);

/* Picks the credentials of server from a config.json text (pure): credHelpers[server], else
 * credsStore, else an auths entry whose key is server or names its host (https://host:port/v2/
 * matches host:port). An entry with no "auth" is NONE; an identity token alone, or "auth" that
 * is not base64 of "user:password", is refused. MERR_CORRUPT for text that is not a JSON object
 * or has wrongly typed fields. */
MUST_CHECK int dockercreds_select(const char *json, size_t len, const char *server,
                                  struct dockercreds *out, struct merr *err);

/* A helper's answer to `get`: {"ServerURL","Username","Secret"} into BASIC (pure). A Username of
 * "<token>" (an identity token) is MERR_UNSUPPORTED. */
MUST_CHECK int dockercreds_helper_answer(const char *json, size_t len, struct dockercreds *out,
                                         struct merr *err);

/* The credentials for registry from the user's docker config (a missing file is NONE), a helper
 * run through runner (NULL: the real one; bounded in time). *source gets where they came from,
 * for messages: the config file's path or "docker-credential-NAME". */
MUST_CHECK int dockercreds_lookup(const struct cmd_runner *runner, const char *registry,
                                  struct dockercreds *out, char **source, struct merr *err);

void dockercreds_clear(struct dockercreds *c);

#endif
