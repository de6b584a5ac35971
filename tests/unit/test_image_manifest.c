/* Manifest / index / config parsing, platform selection and ChainIDs (cases 9, 10). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "image/manifest.h"

#define D(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
                 c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

/* Shaped like docker.io/library/alpine's index (2024): attestation manifests are
 * listed next to the images with platform unknown/unknown. */
static const char alpine_index[] =
    "{\"manifests\":["
    "{\"annotations\":{\"vnd.docker.reference.digest\":\"" D("1") "\","
    "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
    "\"digest\":\"" D("a") "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"},\"size\":839},"
    "{\"annotations\":{\"com.docker.official-images.bashbrew.arch\":\"amd64\","
    "\"org.opencontainers.image.base.name\":\"scratch\"},"
    "\"digest\":\"" D("1") "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"size\":1022},"
    "{\"digest\":\"" D("2") "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"},\"size\":1025},"
    "{\"digest\":\"" D("3") "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"},\"size\":1025},"
    "{\"digest\":\"" D("4") "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"},\"size\":1025},"
    "{\"annotations\":{\"vnd.docker.reference.digest\":\"" D("4") "\","
    "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
    "\"digest\":\"" D("b") "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"},\"size\":839}"
    "],\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"schemaVersion\":2}";

/* Shaped like a Docker Hub schema2 manifest. */
static const char docker_manifest[] =
    "{\n   \"schemaVersion\": 2,\n"
    "   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
    "   \"config\": {\n"
    "      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
    "      \"size\": 1472,\n      \"digest\": \"" D("c") "\"\n   },\n"
    "   \"layers\": [\n      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 3408729,\n         \"digest\": \"" D("d") "\"\n      },\n      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 125,\n         \"digest\": \"" D("e") "\"\n      }\n   ]\n}";

/* An OCI manifest as umoci writes it (no mediaType field, annotations). */
static const char oci_manifest[] =
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
    "\"digest\":\"" D("c") "\",\"size\":592},\"layers\":["
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D("d") "\","
    "\"size\":1024},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D("e") "\","
    "\"size\":10},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D("f") "\","
    "\"size\":2048}],"
    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}";

static struct manifest *parse_ok(const char *s, const char *ctype)
{
    struct manifest *m = NULL;
    struct merr err = MERR_INIT;
    if (image_manifest_parse(s, strlen(s), ctype, &m, &err) < 0)
        fail_msg("parse: %s", err.msg);
    return m;
}

static int parse_code(const char *s, size_t len, const char *ctype)
{
    struct manifest *m = NULL;
    struct merr err = MERR_INIT;
    int r = image_manifest_parse(s, len, ctype, &m, &err);
    assert_null(m);
    assert_int_equal(r, -1);
    return err.code;
}

static void test_docker_manifest(void **state)
{
    (void)state;
    struct manifest *m = parse_ok(docker_manifest, NULL);
    assert_int_equal(m->kind, MANIFEST_KIND_IMAGE);
    assert_string_equal(m->media_type, MEDIA_DOCKER_MANIFEST);
    assert_string_equal(m->config.digest, D("c"));
    assert_int_equal(m->config.size, 1472);
    assert_int_equal(m->n_layers, 2);
    assert_string_equal(m->layers[0].digest, D("d"));
    assert_int_equal(m->layers[0].size, 3408729);
    assert_int_equal(m->layers[0].comp, LAYER_COMPRESSION_GZIP);
    image_manifest_free(m);
}

static void test_oci_manifest(void **state)
{
    (void)state;
    struct manifest *m = parse_ok(oci_manifest, "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(m->kind, MANIFEST_KIND_IMAGE);
    assert_string_equal(m->media_type, MEDIA_OCI_MANIFEST);
    assert_int_equal(m->n_layers, 3);
    assert_int_equal(m->layers[0].comp, LAYER_COMPRESSION_GZIP);
    assert_int_equal(m->layers[1].comp, LAYER_COMPRESSION_ZSTD);
    assert_int_equal(m->layers[2].comp, LAYER_COMPRESSION_NONE);
    image_manifest_free(m);
    /* with no mediaType anywhere the fields decide */
    m = parse_ok(oci_manifest, NULL);
    assert_int_equal(m->kind, MANIFEST_KIND_IMAGE);
    image_manifest_free(m);
}

static void test_index_and_platforms(void **state)
{
    (void)state;
    struct manifest *m = parse_ok(alpine_index, NULL);
    assert_int_equal(m->kind, MANIFEST_KIND_INDEX);
    assert_int_equal(m->n_entries, 6);
    struct merr err = MERR_INIT;
    struct platform p;

    assert_int_equal(image_platform_parse("linux/amd64", &p, &err), 0);
    const struct descriptor *d = image_manifest_select_platform(m, &p, &err);
    assert_non_null(d);
    assert_string_equal(d->digest, D("1")); /* not the unknown/unknown entry before it */

    assert_int_equal(image_platform_parse("linux/arm/v7", &p, &err), 0);
    d = image_manifest_select_platform(m, &p, &err);
    assert_non_null(d);
    assert_string_equal(d->digest, D("3"));

    assert_int_equal(image_platform_parse("linux/aarch64", &p, &err), 0);
    assert_string_equal(p.arch, "arm64");
    d = image_manifest_select_platform(m, &p, &err);
    assert_non_null(d);
    assert_string_equal(d->digest, D("4")); /* the annotated attestation is skipped */

    assert_int_equal(image_platform_parse("linux/s390x", &p, &err), 0);
    assert_null(image_manifest_select_platform(m, &p, &err));
    assert_int_equal(err.code, MERR_NOT_FOUND);

    /* nobody can ask for the attestation entry */
    assert_int_equal(image_platform_parse("unknown/unknown", &p, &err), 0);
    assert_null(image_manifest_select_platform(m, &p, &err));
    image_manifest_free(m);

    assert_int_equal(image_platform_parse("", &p, &err), 0);
    assert_string_equal(p.os, "linux");
    assert_int_not_equal(image_platform_parse("linux", &p, &err), 0);
    assert_int_not_equal(image_platform_parse("linux/amd64/v2/x", &p, &err), 0);
    assert_int_not_equal(image_platform_parse("linux//v2", &p, &err), 0);
    assert_int_not_equal(image_platform_parse("linux/am d64", &p, &err), 0);
}

static void test_both_fields_rejected(void **state)
{
    (void)state;
    /* CVE-2021-41190: the same bytes must not be both an index and a manifest */
    static const char both[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
        "\"digest\":\"" D("c") "\",\"size\":1},\"layers\":[],"
        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"" D("1") "\",\"size\":1,\"platform\":{\"architecture\":\"amd64\","
        "\"os\":\"linux\"}}]}";
    assert_int_equal(parse_code(both, strlen(both), NULL), MERR_INVALID);
    assert_int_equal(parse_code(both, strlen(both), MEDIA_OCI_INDEX), MERR_INVALID);
    /* an index claiming to be one but carrying image fields */
    static const char idx_with_config[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"config\":{\"mediaType\":\"x\",\"digest\":\"" D("c") "\",\"size\":1},"
        "\"manifests\":[]}";
    assert_int_equal(parse_code(idx_with_config, strlen(idx_with_config), NULL), MERR_INVALID);
    /* an image manifest by mediaType with index fields */
    static const char img_with_manifests[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"manifests\":[]}";
    assert_int_equal(parse_code(img_with_manifests, strlen(img_with_manifests), NULL),
                     MERR_INVALID);
}

static void test_size_cap(void **state)
{
    (void)state;
    size_t len = MANIFEST_MAX_SIZE + 1;
    char *big = malloc(len + 1);
    assert_non_null(big);
    size_t n = strlen(docker_manifest);
    memcpy(big, docker_manifest, n);
    memset(big + n, ' ', len - n);
    big[len] = '\0';
    assert_int_equal(parse_code(big, len, NULL), MERR_INVALID);
    /* the same document padded to exactly the cap is fine */
    struct manifest *m = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(image_manifest_parse(big, MANIFEST_MAX_SIZE, NULL, &m, &err), 0);
    image_manifest_free(m);
    free(big);
}

static void test_bad_documents(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}",
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:../../etc\",\"size\":1},\"layers\":[]}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D("c") "\",\"size\":1},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
        "\"digest\":\"" D("C") "\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D("c") "\",\"size\":-1},"
        "\"layers\":[]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:abc\","
        "\"size\":1}]}",
        "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct manifest *m = NULL;
        struct merr err = MERR_INIT;
        if (image_manifest_parse(bad[i], strlen(bad[i]), NULL, &m, &err) == 0)
            fail_msg("document %zu accepted", i);
        assert_null(m);
    }
    /* a foreign (Windows) layer type is refused */
    static const char foreign[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D("c") "\",\"size\":1},"
        "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
        "\"digest\":\"" D("d") "\",\"size\":1,\"urls\":[\"https://example.invalid/x\"]}]}";
    assert_int_equal(parse_code(foreign, strlen(foreign), NULL), MERR_UNSUPPORTED);
}

/* Shaped like the config of an image built by `docker build` (trimmed). */
static const char config_json[] =
    "{\"architecture\":\"amd64\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"/bin/sh\"],\"Labels\":{\"a\":\"b\"}},"
    "\"created\":\"2024-01-27T00:30:56.150250105Z\",\"history\":[{\"created\":"
    "\"2024-01-27T00:30:56Z\",\"created_by\":\"ADD file:37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473 in / \"}],"
    "\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
    "\"sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\","
    "\"sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d\","
    "\"sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6\"]}}";

static void test_config_and_chain_ids(void **state)
{
    (void)state;
    struct image_config_info *c = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(image_config_parse(config_json, strlen(config_json), &c, &err), 0);
    assert_string_equal(c->platform.os, "linux");
    assert_string_equal(c->platform.arch, "amd64");
    assert_int_equal(c->n_diff_ids, 3);
    assert_int_equal(rfc3339_to_unix(c->created), 1706315456LL);

    char chain[3][DIGEST_BUF_LEN];
    assert_int_equal(image_chain_ids_compute((const char(*)[DIGEST_BUF_LEN])c->diff_ids, 3, chain, &err),
                     0);
    /* Independently computed with sha256sum:
     *   printf '%s %s' "$A" "$B" | sha256sum, then with the result and C. */
    assert_string_equal(chain[0], c->diff_ids[0]);
    assert_string_equal(chain[1],
                        "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676");
    assert_string_equal(chain[2],
                        "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106");
    image_config_info_free(c);

    static const char bad_rootfs[] =
        "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\","
        "\"diff_ids\":[\"sha256:../../../etc/passwd\"]}}";
    assert_int_equal(image_config_parse(bad_rootfs, strlen(bad_rootfs), &c, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    static const char no_rootfs[] = "{\"os\":\"linux\",\"architecture\":\"amd64\"}";
    assert_int_equal(image_config_parse(no_rootfs, strlen(no_rootfs), &c, &err), -1);

    char hex[DIGEST_BUF_LEN];
    sha256_digest("a", 1, hex);
    assert_string_equal(hex,
                        "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_to_unix("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(rfc3339_to_unix("2024-01-27T01:30:56+01:00"), 1706315456LL);
    assert_int_equal(rfc3339_to_unix("2024-01-27"), -1);
    assert_int_equal(rfc3339_to_unix("2024-01-27T00:30:56Zjunk"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docker_manifest),
        cmocka_unit_test(test_oci_manifest),
        cmocka_unit_test(test_index_and_platforms),
        cmocka_unit_test(test_both_fields_rejected),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_config_and_chain_ids),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
