/* Fuzz target for the image module's pure parsers (security case 30): manifests,
 * indexes with platform selection, image configs with ChainIDs, references,
 * WWW-Authenticate, token replies, X-Registry-Auth and Retry-After. The first
 * input byte picks the parser, the rest is its input. Built with libFuzzer under
 * -DMACHINE_FUZZ=ON (clang); otherwise replay_main.c runs the seed corpus. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http.h"
#include "image/auth.h"
#include "image/manifest.h"
#include "image/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_manifest(const char *buf, size_t len)
{
    struct manifest *m = NULL;
    struct merr err = MERR_INIT;
    if (image_manifest_parse(buf, len, NULL, &m, &err) < 0)
        return;
    if (m->kind == MANIFEST_KIND_INDEX) {
        static const char *const platforms[] = { NULL, "linux/arm64", "linux/arm/v7",
                                                 "windows/amd64" };
        for (size_t i = 0; i < 4; i++) {
            struct platform p;
            if (image_platform_parse(platforms[i], &p, &err) == 0)
                (void)image_manifest_select_platform(m, &p, &err);
        }
    }
    image_manifest_free(m);
}

static void fuzz_config(const char *buf, size_t len)
{
    struct image_config_info *c = NULL;
    struct merr err = MERR_INIT;
    if (image_config_parse(buf, len, &c, &err) < 0)
        return;
    char(*chain)[DIGEST_BUF_LEN] = calloc(c->n_diff_ids + 1, sizeof *chain);
    if (chain != NULL &&
        image_chain_ids_compute((const char(*)[DIGEST_BUF_LEN])c->diff_ids, c->n_diff_ids, chain,
                          &err) == 0)
        (void)rfc3339_to_unix(c->created);
    free(chain);
    image_config_info_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 7;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    /* string parsers get a NUL-terminated copy */
    char *str = malloc(len + 1);
    if (str == NULL)
        return 0;
    memcpy(str, buf, len);
    str[len] = '\0';
    struct merr err = MERR_INIT;
    switch (which) {
    case 0:
        fuzz_manifest(buf, len);
        break;
    case 1:
        fuzz_config(buf, len);
        break;
    case 2: {
        struct image_ref ref;
        if (image_ref_parse(str, &ref, &err) == 0) {
            char out[600];
            image_ref_familiar_repo(&ref, out, sizeof out);
        }
        (void)image_digest_is_valid(str);
        (void)image_host_is_loopback(str);
        break;
    }
    case 3: {
        struct auth_challenge c;
        (void)!image_www_authenticate_parse(str, &c, &err);
        break;
    }
    case 4: {
        char *tok = NULL;
        long exp;
        if (image_token_response_parse(buf, len, &tok, &exp, &err) == 0)
            free(tok);
        break;
    }
    case 5: {
        struct registry_creds c;
        if (image_x_registry_auth_decode(str, &c, &err) == 0)
            image_registry_creds_clear(&c);
        break;
    }
    case 6: {
        struct platform p;
        (void)!image_platform_parse(str, &p, &err);
        (void)http_retry_after_parse(str, 1700000000);
        break;
    }
    }
    free(str);
    return 0;
}
