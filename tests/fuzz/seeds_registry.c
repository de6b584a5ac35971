/* Writes a seed corpus for fuzz_registry into the directory argv[1]: registry responses
 * (a 401 challenge, a 429 with Retry-After, a token, an OCI index, a manifest, a config). */
#include "seeds_text.h"

static const struct text_seed seeds[] = {
    { "challenge",
      "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Bearer realm=\"https://auth.example.test/token\",service=\"registry.example.test\",scope=\"repository:lib/img:pull\"\r\nContent-Length: 0\r\n\r\n" },
    { "retry",
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\n\r\n" },
    { "token",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"token\":\"abc.def\",\"access_token\":\"abc.def\",\"expires_in\":300,\"issued_at\":\"2026-01-01T00:00:00Z\"}" },
    { "index",
      "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n\r\n{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":500,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":500,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}]}" },
    { "manifest",
      "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.distribution.manifest.v2+json\r\n\r\n{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":1000,\"digest\":\"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":2000,\"digest\":\"sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\"}]}" },
    { "config",
      "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.config.v1+json\r\n\r\n{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2026-01-02T03:04:05.123456789Z\",\"config\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\",\"sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"]}}" },
};

int main(int argc, char **argv)
{
    return seeds_main(argc, argv, seeds, sizeof seeds / sizeof seeds[0]);
}
